package checker_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/graft-cluster/graft/jepsen/checker"
)

func TestBucket(t *testing.T) {
	chains := map[string][]checker.Entry{"v": entries("a", "b", "c"), "w": entries("x")}
	for _, tc := range []struct {
		name        string
		bucket      map[string][]checker.Entry
		requireFull bool
		want        checker.Verdict
		mention     []string
	}{
		{"full", map[string][]checker.Entry{"v": entries("a", "b", "c"), "w": entries("x")}, true, checker.Valid, nil},
		{"prefix allowed", map[string][]checker.Entry{"v": entries("a")}, false, checker.Valid, nil},
		{"prefix after a final flush", map[string][]checker.Entry{"v": entries("a"), "w": entries("x")}, true, checker.Invalid, []string{"vid v", "1..1", "head is 3"}},
		{"gap", map[string][]checker.Entry{"v": {{1, "a"}, {3, "c"}}}, false, checker.Invalid, []string{"vid v", "gap-free", "lsn 3, want 2"}},
		{"not starting at 1", map[string][]checker.Entry{"v": {{2, "b"}}}, false, checker.Invalid, []string{"lsn 2, want 1"}},
		{"hash differs", map[string][]checker.Entry{"v": entries("a", "q")}, false, checker.Invalid, []string{"vid v lsn 2", "hash q"}},
		{"beyond the head", map[string][]checker.Entry{"w": entries("x", "y")}, false, checker.Invalid, []string{"vid w lsn 2", "beyond"}},
		{"unknown volume", map[string][]checker.Entry{"z": entries("a")}, false, checker.Invalid, []string{"vid z"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantVerdict(t, checker.Bucket(chains, tc.bucket, tc.requireFull), tc.want, tc.mention...)
		})
	}
}

func TestFinalBucket(t *testing.T) {
	chains := map[string][]checker.Entry{"v": entries("a", "b", "c")}
	full := map[string][]checker.Entry{"v": entries("a", "b", "c")}
	prefix := map[string][]checker.Entry{"v": entries("a")}
	unreadable := fmt.Errorf("%w: deadline_exceeded", checker.ErrUnreadable)
	gone := errors.New("get log record v@2: objstore: not found")
	for _, tc := range []struct {
		name              string
		chains, bucket    map[string][]checker.Entry
		flushErr, readErr error
		want              checker.Verdict
		mention           []string
		because           string
	}{
		{"flushed and whole", chains, full, nil, nil, checker.Valid, nil, ""},
		{"flushed, bucket lacks the tail", chains, prefix, nil, nil, checker.Invalid, []string{"1..1", "head is 3"}, ""},
		{"read finds a record gone", chains, nil, nil, gone, checker.Invalid, []string{"read bucket", "gone", "not found"}, ""},
		{"flush refused for what the bucket holds", chains, prefix, errors.New("data_loss: flush blocked"), nil, checker.Invalid, []string{"final flush", "flush blocked"}, ""},
		{"flush timed out, bucket a prefix", chains, prefix, unreadable, nil, checker.Unknown, nil, "final flush"},
		{"flush timed out, bucket has a gap", chains, map[string][]checker.Entry{"v": {{LSN: 2, Hash: "b"}}}, unreadable, nil, checker.Invalid, []string{"lsn 2, want 1"}, ""},
		{"bucket unreachable", chains, nil, nil, unreadable, checker.Unknown, nil, "read bucket"},
		{"no chain to compare with", nil, full, nil, nil, checker.Unknown, nil, "no node's chain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := checker.FinalBucket(tc.chains, tc.bucket, tc.flushErr, tc.readErr)
			if r.Name != "bucket" {
				t.Errorf("name %q, want bucket", r.Name)
			}
			if tc.want == checker.Unknown {
				if r.Valid != checker.Unknown || len(r.Anomalies) > 0 {
					t.Fatalf("verdict %s, anomalies %q; want unknown without anomalies", r.Valid, r.Anomalies)
				}
				if !strings.Contains(fmt.Sprint(r.Stats["unknown_because"]), tc.because) {
					t.Fatalf("unknown_because %v does not mention %q", r.Stats["unknown_because"], tc.because)
				}
				return
			}
			wantVerdict(t, r, tc.want, tc.mention...)
		})
	}
}
