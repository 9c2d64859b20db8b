package checker_test

import (
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
