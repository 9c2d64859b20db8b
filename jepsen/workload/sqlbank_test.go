package workload

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/graft-cluster/graft/volume"
)

// fakeClient writes a shell script that stands in for graft
// jepsen-sqlite-client: it reads one request and runs body.
func fakeClient(t *testing.T, body string) *Env {
	t.Helper()
	dir := t.TempDir()
	bin := filepath.Join(dir, "client")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\nread l\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	env := &Env{Binary: bin, Dir: dir}
	env.defaults()
	return env
}

func TestSQLProc_Do(t *testing.T) {
	cases := []struct {
		name         string
		body         string
		wantDone     bool
		wantPrepared bool
		wantType     string
	}{
		{"answers", `printf '{"prepared":true,"base":7,"debited":true}\n{"type":"ok","base":7,"lsn":8}\n'`, true, true, "ok"},
		// Killed after it announced COMMIT: the prepared line is still read
		// (drained after the kill), so the transfer is recorded as unknown.
		{"hangs after prepared", `printf '{"prepared":true,"base":7,"debited":true}\n'; exec sleep 30`, false, true, ""},
		// Killed before it announced COMMIT: nothing can have been committed.
		{"hangs before prepared", `exec sleep 30`, false, false, ""},
		{"exits", `exit 3`, false, false, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			env := fakeClient(t, c.body)
			p, err := startSQLProc(env, volume.ID{}, "http://127.0.0.1:1", filepath.Join(env.Dir, "p0"))
			if err != nil {
				t.Fatal(err)
			}
			defer p.stop()
			prepared, final, done := p.do(map[string]any{"op": "transfer"}, 500*time.Millisecond)
			if done != c.wantDone || (prepared != nil) != c.wantPrepared || final.Type != c.wantType {
				t.Fatalf("done %v prepared %+v final %+v; want done %v prepared %v type %q", done, prepared, final, c.wantDone, c.wantPrepared, c.wantType)
			}
			if prepared != nil && (prepared.Base != 7 || !prepared.Debited) {
				t.Fatalf("prepared %+v, want base 7 debited", prepared)
			}
		})
	}
}
