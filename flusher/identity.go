package flusher

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"github.com/graft-cluster/graft/fsm"
	"github.com/graft-cluster/graft/objstore"
)

// IdentityKey is the key of the object that fences an object-store
// prefix to one cluster: it holds the owning cluster's ID, written
// create-only by the cluster's first leader, and the same ID is in every
// replica's state (fsm.FSM.ClusterID).
const IdentityKey = "cluster"

// identityPrefix starts the identity object's one line: "graft cluster ID\n".
const identityPrefix = "graft cluster "

// EnsureIdentity fences the object store to this cluster before its leader
// recovers, flushes or collects garbage there. It runs on every new
// leader:
//
//   - no identity object: the cluster's ID (minted and committed through
//     Raft first, if the state has none) is written create-only;
//   - the object names this cluster: nothing to do;
//   - the state has no ID and recovery has not run (a new cluster with
//     empty Raft state on an existing bucket: disaster recovery): the
//     cluster adopts the bucket's ID;
//   - otherwise the bucket belongs to another cluster: ErrForeignBucket,
//     unless adopt is set, in which case the object is overwritten with
//     this cluster's ID (the previous owner's next leader then refuses the
//     bucket).
//
// Object-store failures are returned as *StoreError (retry).
func EnsureIdentity(ctx context.Context, f *fsm.FSM, store objstore.Store, prop Proposer, adopt bool, log *slog.Logger) error {
	if store == nil {
		return nil
	}
	for range 3 {
		ours := f.ClusterID()
		theirs, found, err := readIdentity(ctx, store)
		var unreadable *identityError
		switch {
		case errors.As(err, &unreadable):
			if !adopt {
				return fmt.Errorf("%w: %v; start the nodes with --adopt-bucket to take the prefix over", ErrForeignBucket, err)
			}
		case err != nil:
			return err
		case found && theirs == ours:
			return nil
		case !found:
			if ours, err = ensureID(ctx, f, prop); err != nil {
				return err
			}
			err := store.PutIfAbsent(ctx, IdentityKey, encodeIdentity(ours))
			if errors.Is(err, objstore.ErrExists) {
				continue // another cluster won the race: look again
			}
			if err != nil {
				return &StoreError{Op: "write identity object " + IdentityKey, Err: err}
			}
			log.Info("fenced the object store to this cluster", "key", IdentityKey, "cluster_id", ours)
			return nil
		case ours == "" && !f.Recovered():
			if err := proposeAdmin(ctx, prop, fsm.EncodeIdentity(theirs)); err != nil {
				return fmt.Errorf("adopt the object store's cluster id: %w", err)
			}
			log.Info("new cluster on an existing object store: adopting its identity (disaster recovery)", "key", IdentityKey, "cluster_id", theirs)
			return nil
		case !adopt:
			return fmt.Errorf("%w: %s names cluster %s, this cluster is %s: another cluster owns this prefix (or this Raft state is not the bucket's); "+
				"nothing is flushed, recovered or collected there; start the nodes with --adopt-bucket to take the prefix over",
				ErrForeignBucket, IdentityKey, theirs, or(ours, "(none yet)"))
		}
		// adopt: take the prefix over.
		if ours, err = ensureID(ctx, f, prop); err != nil {
			return err
		}
		if err := store.Put(ctx, IdentityKey, encodeIdentity(ours)); err != nil {
			return &StoreError{Op: "write identity object " + IdentityKey, Err: err}
		}
		log.Warn("adopted an object store that belonged to another cluster (--adopt-bucket)", "key", IdentityKey, "previous_owner", or(theirs, "(unreadable)"), "cluster_id", ours)
		return nil
	}
	return fmt.Errorf("%w: the identity object %s keeps changing under this cluster", ErrForeignBucket, IdentityKey)
}

// ensureID returns the state's cluster ID, minting and committing one
// first if it has none.
func ensureID(ctx context.Context, f *fsm.FSM, prop Proposer) (string, error) {
	if id := f.ClusterID(); id != "" {
		return id, nil
	}
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", fmt.Errorf("mint cluster id: %w", err)
	}
	if err := proposeAdmin(ctx, prop, fsm.EncodeIdentity(hex.EncodeToString(b[:]))); err != nil {
		return "", fmt.Errorf("set cluster id: %w", err)
	}
	return f.ClusterID(), nil // ours, or a concurrent leader's
}

// identityError is an identity object that does not parse.
type identityError struct{ content string }

func (e *identityError) Error() string {
	return fmt.Sprintf("identity object %s does not parse: %q", IdentityKey, e.content)
}

// readIdentity returns the cluster ID in the identity object.
func readIdentity(ctx context.Context, store objstore.Store) (string, bool, error) {
	b, err := store.Get(ctx, IdentityKey)
	if errors.Is(err, objstore.ErrNotFound) {
		return "", false, nil
	}
	if err != nil {
		return "", false, &StoreError{Op: "read identity object " + IdentityKey, Err: err}
	}
	line := strings.TrimSuffix(string(b), "\n")
	id, ok := strings.CutPrefix(line, identityPrefix)
	if !ok || id == "" || len(id) > 256 || strings.ContainsAny(id, " \t\r\n") {
		return "", true, &identityError{content: string(b[:min(len(b), 64)])}
	}
	return id, true, nil
}

func encodeIdentity(id string) []byte { return []byte(identityPrefix + id + "\n") }

// ReadIdentity returns the cluster ID the object store is fenced to, or ""
// when it has no identity object.
func ReadIdentity(ctx context.Context, store objstore.Store) (string, error) {
	id, _, err := readIdentity(ctx, store)
	return id, err
}

func or(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
