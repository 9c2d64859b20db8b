package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"connectrpc.com/connect"

	graftv1 "github.com/graft-cluster/graft/api/graft/v1"
	"github.com/graft-cluster/graft/flusher"
	"github.com/graft-cluster/graft/fsm"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// invalidArgument builds an invalid_argument error with a message naming
// what is wrong.
func invalidArgument(format string, args ...any) *connect.Error {
	return connect.NewError(connect.CodeInvalidArgument, fmt.Errorf(format, args...))
}

// toConnect maps a domain error to a Connect error. It is the one place
// where internal errors meet the wire (STYLE.md 7): messages say what a
// caller can do; unexpected errors are logged and answered as internal
// without their details.
func toConnect(log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	var ce *connect.Error
	if errors.As(err, &ce) {
		return ce
	}
	var stale *fsm.StaleError
	var quarantined *fsm.QuarantineError
	var conflict *flusher.ConflictError
	switch {
	case errors.As(err, &stale):
		e := connect.NewError(connect.CodeAborted, fmt.Errorf(
			"commit rejected: base_lsn %d is not the head of volume %s (head is lsn %d); pull and retry on the head",
			stale.Base, stale.Head.VID, stale.Head.LSN))
		if d, derr := connect.NewErrorDetail(&graftv1.CommitConflict{Head: snapshotProto(stale.Head)}); derr == nil {
			e.AddDetail(d)
		}
		return e
	case errors.Is(err, fsm.ErrBufferFull):
		e := connect.NewError(connect.CodeResourceExhausted, fmt.Errorf(
			"%w; retry in about %ds, once the buffer drains to the object store", err, retryAfterSeconds))
		e.Meta().Set("Retry-After", fmt.Sprint(retryAfterSeconds))
		return e
	case errors.Is(err, ErrOutcomeCollected):
		// Before ErrRetention, which it wraps: the message says the outcome
		// is unknowable, not just that a read is too old.
		return connect.NewError(connect.CodeOutOfRange, err)
	case errors.Is(err, ErrUnknownOutcome):
		// Before the object-store cases: a commit whose retry could not be
		// told from a stale one because its log record could not be read
		// (missing, corrupt, store down) has an unknown outcome. A definite
		// code such as data_loss would tell the client it failed (and stop
		// its retries) while it may have landed.
		if errors.Is(err, objstore.ErrNotFound) || errors.Is(err, flusher.ErrLayout) {
			log.Error("log record of a flushed commit unreadable; its retries get unavailable", "err", err)
		}
		return connect.NewError(connect.CodeUnavailable, fmt.Errorf(
			"%w; the commit may or may not have been applied: retry with the same content", err))
	case errors.Is(err, fsm.ErrVolumeDeleted):
		return connect.NewError(connect.CodeNotFound, err)
	case errors.Is(err, fsm.ErrRetention):
		// Before the object-store cases: below the horizon GC may have
		// deleted the objects; the message names the oldest readable lsn.
		return connect.NewError(connect.CodeOutOfRange, err)
	case errors.As(err, &quarantined):
		return connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf(
			"volume %s is quarantined: object %s in the object store conflicts with the cluster's state (%s); "+
				"its commits (and, if its head could not be recovered, its reads) are refused until an operator fixes or removes that object "+
				"and runs `graft cluster unquarantine %s`", quarantined.VID, quarantined.Key, quarantined.Reason, quarantined.VID))
	case errors.As(err, &conflict):
		return connect.NewError(connect.CodeFailedPrecondition, fmt.Errorf(
			"volume %s: object %s in the object store conflicts with the cluster's state (%s); fix or remove it first",
			conflict.VID, conflict.Key, conflict.Reason))
	case errors.Is(err, flusher.ErrForeignBucket), errors.Is(err, flusher.ErrNotQuarantined):
		return connect.NewError(connect.CodeFailedPrecondition, err)
	case errors.Is(err, segment.ErrCorrupt):
		log.Error("corrupt object in the object store", "err", err)
		return connect.NewError(connect.CodeDataLoss, fmt.Errorf("flushed data in the object store is corrupt: %w", err))
	case errors.Is(err, flusher.ErrLayout):
		log.Error("object store layout violated", "err", err)
		return connect.NewError(connect.CodeDataLoss, err)
	case errors.Is(err, flusher.ErrNotFlushed):
		return connect.NewError(connect.CodeFailedPrecondition, err)
	case errors.Is(err, objstore.ErrNotFound):
		log.Error("object missing from the object store", "err", err)
		return connect.NewError(connect.CodeDataLoss, fmt.Errorf("flushed data missing from the object store: %w", err))
	case errors.Is(err, volume.ErrInvalidID), errors.Is(err, volume.ErrInvalidCommit),
		errors.Is(err, volume.ErrInvalidPage), errors.Is(err, volume.ErrInvalidPageSet):
		return connect.NewError(connect.CodeInvalidArgument, err)
	case errors.Is(err, fsm.ErrFutureLSN):
		return connect.NewError(connect.CodeOutOfRange, err)
	case errors.Is(err, fsm.ErrNotBuffered):
		return connect.NewError(connect.CodeFailedPrecondition, err)
	case errors.Is(err, ErrNotLeader), errors.Is(err, ErrNoLeader), errors.Is(err, ErrClosed), errors.Is(err, ErrStoreNotReady):
		return connect.NewError(connect.CodeUnavailable, fmt.Errorf("%w; retry shortly", err))
	case errors.Is(err, context.DeadlineExceeded):
		return connect.NewError(connect.CodeDeadlineExceeded, err)
	case isStoreError(err):
		return connect.NewError(connect.CodeUnavailable, fmt.Errorf("object store: %w; retry shortly", err))
	case errors.Is(err, context.Canceled):
		return connect.NewError(connect.CodeCanceled, err)
	case errors.Is(err, fsm.ErrInvalidCommand):
		log.Error("invalid raft command", "err", err)
		return connect.NewError(connect.CodeInternal, errors.New("internal error: invalid command"))
	default:
		log.Error("unexpected error", "err", err)
		return connect.NewError(connect.CodeInternal, errors.New("internal error"))
	}
}

// retryAfterSeconds is the hint sent with resource_exhausted.
const retryAfterSeconds = 1

// isStoreError reports whether err came from the object store (network,
// 5xx, throttling): transient from the caller's view.
func isStoreError(err error) bool {
	var se *flusher.StoreError
	return errors.As(err, &se)
}

func snapshotProto(s volume.Snapshot) *graftv1.Snapshot {
	return &graftv1.Snapshot{Vid: s.VID.String(), Lsn: uint64(s.LSN), PageCount: s.PageCount}
}
