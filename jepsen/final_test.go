package jepsen

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"connectrpc.com/connect"

	"github.com/graft-cluster/graft/flusher"
	"github.com/graft-cluster/graft/jepsen/checker"
	"github.com/graft-cluster/graft/jepsen/history"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/segment"
)

// finalOps: commits a@1 and b@2 of volume "vol", both acknowledged.
func finalOps() []history.Op {
	ops := []history.Op{
		{Process: 0, Type: history.Invoke, F: "commit", VID: "vol", Base: 0, Hash: "a"},
		{Process: 0, Type: history.OK, F: "commit", VID: "vol", LSN: 1},
		{Process: 0, Type: history.Invoke, F: "commit", VID: "vol", Base: 1, Hash: "b"},
		{Process: 0, Type: history.OK, F: "commit", VID: "vol", LSN: 2},
	}
	for i := range ops {
		ops[i].Index, ops[i].Time = i, time.Duration(i)*time.Millisecond
	}
	return ops
}

func finalChains() map[string][]checker.Entry {
	return map[string][]checker.Entry{"vol": {{LSN: 1, Hash: "a"}, {LSN: 2, Hash: "b"}}}
}

// What the runner gets back when a node or the bucket cannot be read, and
// when the read shows the data is gone.
var (
	errTimeout  = fmt.Errorf("pull commits of vol since 0: %w", connect.NewError(connect.CodeDeadlineExceeded, context.DeadlineExceeded))
	errNoLeader = fmt.Errorf("pull commits of vol since 0: %w", connect.NewError(connect.CodeUnavailable, errors.New("cluster: no leader")))
	// A node read of a range the node says is flushed, missing in the bucket.
	errDataLoss = fmt.Errorf("pull commits of vol since 0: %w", connect.NewError(connect.CodeDataLoss,
		errors.New("flushed data missing from the object store: get log record vol@1: objstore: not found")))
	// The stateless reader: a record listed, then gone; a gap below the
	// flushed LSNs; a corrupt record; the store down.
	errRecordGone = &flusher.StoreError{Op: "get log record vol@1", Err: fmt.Errorf("get k: %w", objstore.ErrNotFound)}
	errGap        = fmt.Errorf("%w: lsn 1 of vol (flushed history covers [2, 2])", flusher.ErrNotFlushed)
	errCorrupt    = fmt.Errorf("log record vol@1: %w: checksum", segment.ErrCorrupt)
	errStoreDown  = &flusher.StoreError{Op: "list log of vol", Err: errors.New("dial tcp: connection refused")}
)

func TestFinalReadError(t *testing.T) {
	for _, tc := range []struct {
		name       string
		err        error
		unreadable bool
	}{
		{"deadline", errTimeout, true},
		{"unavailable", errNoLeader, true},
		{"canceled", connect.NewError(connect.CodeCanceled, context.Canceled), true},
		{"resource exhausted", connect.NewError(connect.CodeResourceExhausted, errors.New("full")), true},
		{"context", context.DeadlineExceeded, true},
		{"store down", errStoreDown, true},
		{"data loss", errDataLoss, false},
		{"not found", connect.NewError(connect.CodeNotFound, errors.New("no such volume")), false},
		{"record gone", errRecordGone, false},
		{"gap before the flushed lsns", errGap, false},
		{"corrupt record", errCorrupt, false},
		{"layout", fmt.Errorf("%w: record ends at 3, history says 4", flusher.ErrLayout), false},
		{"internal", connect.NewError(connect.CodeInternal, errors.New("internal error")), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := finalReadError(tc.err)
			if !errors.Is(got, tc.err) {
				t.Errorf("finalReadError(%v) = %v, does not wrap the error", tc.err, got)
			}
			if errors.Is(got, checker.ErrUnreadable) != tc.unreadable {
				t.Errorf("finalReadError(%v) = %v: unreadable %v, want %v", tc.err, got, !tc.unreadable, tc.unreadable)
			}
		})
	}
	if finalReadError(nil) != nil {
		t.Error("finalReadError(nil) != nil")
	}
}

// The cluster says a range is flushed and the bucket lacks it: node reads
// answer data_loss and the stateless reader finds the record gone. That is
// lost data, a violation for the chain and bucket checkers; reads that
// could not be made (timeouts, unavailable) stay unknown.
func TestCheckFinal_ReadErrors(t *testing.T) {
	for _, tc := range []struct {
		name             string
		nodeErrs         [3]error
		flushErr, bucket error
		wantChain        checker.Verdict
		wantBucket       checker.Verdict
		mention          string
	}{
		{"all read", [3]error{}, nil, nil, checker.Valid, checker.Valid, ""},
		{"flushed range gone", [3]error{errDataLoss, errDataLoss, errDataLoss}, nil, errRecordGone, checker.Invalid, checker.Invalid, "not found"},
		{"one node says gone", [3]error{nil, errDataLoss, nil}, nil, nil, checker.Invalid, checker.Valid, "node 1"},
		{"gap in the bucket", [3]error{}, nil, errGap, checker.Valid, checker.Invalid, "not flushed"},
		{"corrupt record", [3]error{}, nil, errCorrupt, checker.Valid, checker.Invalid, "corrupt"},
		{"timeouts", [3]error{errTimeout, errTimeout, errTimeout}, errTimeout, errTimeout, checker.Unknown, checker.Unknown, ""},
		{"no leader, store down", [3]error{nil, errNoLeader, nil}, nil, errStoreDown, checker.Unknown, checker.Unknown, ""},
		{"flush refused over a conflicting record", [3]error{}, connect.NewError(connect.CodeDataLoss, errors.New("flush blocked")), nil, checker.Valid, checker.Invalid, "flush blocked"},
		{"flush timed out, bucket a prefix", [3]error{}, errTimeout, nil, checker.Valid, checker.Unknown, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fin := newFinal(3)
			for i, err := range tc.nodeErrs {
				var m map[string][]checker.Entry
				if err == nil {
					m = finalChains()
				}
				fin.setChains(i, m, err)
			}
			fin.setFlush(tc.flushErr)
			var b map[string][]checker.Entry
			if tc.bucket == nil {
				b = finalChains()
			}
			fin.setBucket(bucketState{chains: b}, tc.bucket)
			chain, bucket := checkFinal(finalOps(), fin, nil, false)
			for _, r := range []struct {
				res  checker.Result
				want checker.Verdict
			}{{chain, tc.wantChain}, {bucket, tc.wantBucket}} {
				if r.res.Valid != r.want {
					t.Errorf("%s: verdict %s, want %s; anomalies %q, stats %v", r.res.Name, r.res.Valid, r.want, r.res.Anomalies, r.res.Stats)
				}
				if r.want == checker.Invalid && tc.mention != "" && !strings.Contains(strings.Join(r.res.Anomalies, "\n"), tc.mention) {
					t.Errorf("%s: no anomaly mentions %q: %q", r.res.Name, tc.mention, r.res.Anomalies)
				}
			}
		})
	}
}

// What only reading every record finds (readBucket): a record naming a
// segment the bucket lacks, and a gap in a volume's log, are violations
// whether or not a node's chain could be read to compare with.
func TestCheckFinal_BucketFindings(t *testing.T) {
	missing := []string{"vid vol: log record [2, 2] names segment s, which is not in the bucket: the pages of those commits are lost"}
	gap := map[string][]checker.Entry{"vol": {{LSN: 2, Hash: "b"}}}
	for _, tc := range []struct {
		name    string
		nodes   bool // every node's chain read (else: every node timed out)
		bucket  bucketState
		readErr error
		want    checker.Verdict
		mention string
	}{
		{"whole", true, bucketState{chains: finalChains()}, nil, checker.Valid, ""},
		{"segment missing", true, bucketState{chains: finalChains(), missing: missing}, nil, checker.Invalid, "not in the bucket"},
		{"segment missing, no node read", false, bucketState{chains: finalChains(), missing: missing}, nil, checker.Invalid, "not in the bucket"},
		{"gap, no node read", false, bucketState{chains: gap}, nil, checker.Invalid, "not a gap-free prefix"},
		{"no gap, no node read", false, bucketState{chains: finalChains()}, nil, checker.Unknown, ""},
		{"gap, then the store went down", true, bucketState{chains: gap}, errStoreDown, checker.Invalid, "not a gap-free prefix"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			fin := newFinal(3)
			for i := range 3 {
				if tc.nodes {
					fin.setChains(i, finalChains(), nil)
				} else {
					fin.setChains(i, nil, errTimeout)
				}
			}
			fin.setBucket(tc.bucket, tc.readErr)
			_, bucket := checkFinal(finalOps(), fin, nil, false)
			if bucket.Valid != tc.want {
				t.Errorf("verdict %s, want %s; anomalies %q, stats %v", bucket.Valid, tc.want, bucket.Anomalies, bucket.Stats)
			}
			if tc.mention != "" && !strings.Contains(strings.Join(bucket.Anomalies, "\n"), tc.mention) {
				t.Errorf("no anomaly mentions %q: %q", tc.mention, bucket.Anomalies)
			}
		})
	}
}
