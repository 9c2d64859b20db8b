package tlsutil_test

import (
	"os"
	"testing"

	"github.com/graft-cluster/graft/tlsutil"
)

func TestDevFiles_ReusedWhileValid(t *testing.T) {
	dir := t.TempDir()
	f, created, err := tlsutil.DevFiles(dir)
	if err != nil || !created {
		t.Fatalf("first: %v created=%v", err, created)
	}
	ca1, _ := os.ReadFile(f.CA)
	f2, created, err := tlsutil.DevFiles(dir)
	if err != nil || created || f2 != f {
		t.Fatalf("second: %v created=%v", err, created)
	}
	if ca2, _ := os.ReadFile(f.CA); string(ca2) != string(ca1) {
		t.Fatal("the CA was regenerated although valid")
	}
	if st, err := os.Stat(f.Key); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("key mode: %v %v", st.Mode(), err)
	}
}

func TestHolder_ReloadKeepsOldOnError(t *testing.T) {
	f, _, err := tlsutil.DevFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h, err := tlsutil.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.Cert, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.Reload(); err == nil {
		t.Fatal("reload of a garbage certificate succeeded")
	}
	// The old material still serves.
	cfg, err := h.ServerConfig(false).GetConfigForClient(nil)
	if err != nil || len(cfg.Certificates) != 1 {
		t.Fatalf("after a failed reload: %v", err)
	}
}
