package tlsutil_test

import (
	"crypto/tls"
	"net"
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

// Handshakes counts completed handshakes on each side; one that fails
// verification is not counted on the side that refused it.
func TestHolder_Handshakes(t *testing.T) {
	f, _, err := tlsutil.DevFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h, err := tlsutil.Load(f)
	if err != nil {
		t.Fatal(err)
	}
	handshake := func(host string) error {
		a, b := net.Pipe()
		defer a.Close()
		defer b.Close()
		srv := make(chan error, 1)
		go func() { srv <- tls.Server(b, h.ServerConfig(true)).Handshake() }()
		cerr := tls.Client(a, h.ClientConfig(host)).Handshake()
		a.Close()
		<-srv
		return cerr
	}
	for range 3 {
		if err := handshake("127.0.0.1"); err != nil {
			t.Fatal(err)
		}
	}
	if s, c := h.Handshakes(); s != 3 || c != 3 {
		t.Fatalf("after 3 handshakes: server %d client %d", s, c)
	}
	if err := handshake("not-in-the-certificate.example"); err == nil {
		t.Fatal("a handshake with a name the certificate lacks succeeded")
	}
	if _, c := h.Handshakes(); c != 3 {
		t.Fatalf("a refused handshake was counted: client %d", c)
	}
}
