package cluster

import (
	"fmt"
	"strings"
	"testing"

	"connectrpc.com/connect"

	"github.com/graft-cluster/graft/flusher"
	"github.com/graft-cluster/graft/fsm"
	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// The flush path's domain errors reach the wire with the right code and a
// message that names the object and the way out.
func TestToConnect_FlushPathErrors(t *testing.T) {
	vid := volume.MustNewID()
	key := segment.LogKey(vid, 1)
	for _, tc := range []struct {
		name string
		err  error
		code connect.Code
		says []string
	}{
		{"quarantined", fmt.Errorf("flush: %w", &fsm.QuarantineError{Quarantine: fsm.Quarantine{VID: vid, Key: key, Reason: "undecodable record"}}),
			connect.CodeFailedPrecondition, []string{key, "undecodable record", "graft cluster unquarantine " + vid.String()}},
		{"conflict", &flusher.ConflictError{VID: vid, Key: key, Reason: "stored hash 01"}, connect.CodeFailedPrecondition, []string{key, "stored hash 01"}},
		{"foreign bucket", fmt.Errorf("%w: cluster names someone-else", flusher.ErrForeignBucket), connect.CodeFailedPrecondition, []string{"someone-else"}},
		{"not quarantined", fmt.Errorf("%w: volume %s", flusher.ErrNotQuarantined, vid), connect.CodeFailedPrecondition, []string{vid.String()}},
		{"store not ready", ErrStoreNotReady, connect.CodeUnavailable, []string{"retry"}},
		{"corrupt record", fmt.Errorf("log record %s@1: %w: truncated", vid, segment.ErrCorrupt), connect.CodeDataLoss, []string{vid.String() + "@1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := toConnect(discardLogger, tc.err)
			if connect.CodeOf(err) != tc.code {
				t.Fatalf("code %v, want %v: %v", connect.CodeOf(err), tc.code, err)
			}
			for _, s := range tc.says {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("message %q lacks %q", err.Error(), s)
				}
			}
		})
	}
}
