// Package flusher moves acknowledged commits from the Raft-replicated
// buffer into the object store, and reads them back from there.
//
// # Rounds
//
// Only the leader flushes. A round starts when the buffer holds
// Config.TargetBytes, when the oldest unflushed commit has waited
// Config.MaxAge by this leader's monotonic clock (since it first saw the
// commit, or became leader; commit timestamps come from other nodes' clocks
// and are never compared with ours), or on request (ClusterService.Flush, graceful shutdown, leadership
// transfer). It runs in four steps:
//
//  1. plan: per volume, the contiguous range (flushed+1 .. at most the head,
//     capped by MaxRoundBytes) and a fresh random segment ID; the plan is a
//     Raft entry, and the FSM accepts it only if no round is open and every
//     range starts at the volume's flushed watermark;
//  2. upload each volume's segment (volumes/{vid}/segments/{sid}), a plain
//     PUT: the bytes are a pure function of the plan and the buffer, so a
//     repeated upload writes the same object;
//  3. write each volume's log record (volumes/{vid}/log/{from:020d})
//     create-only (If-None-Match: *); if it exists with the same commit
//     hashes the write counts as done (a retry, or an earlier leader), with
//     other hashes (or undecodable) it is an alarm (ErrConflict);
//  4. commit the round's completion through Raft: every replica moves the
//     ranges from its buffer into the volume's history (fsm.History).
//
// A leader that finds an open round in the state finishes that round first,
// so a crash anywhere leaves neither a gap nor a second record for an LSN.
// PUTs per round are at most two per volume in it: O(active volumes), not
// O(commits). The buffer is trimmed only in step 4, after the object store
// acknowledged every write. While the store is down, commits go on until
// the buffer limits answer resource_exhausted; when it returns, the loop
// (retrying with backoff) drains the buffer.
//
// # Quarantine
//
// One volume's fault is that volume's problem. Before a leader first writes
// a volume's log it lists it once and checks that the state knows every
// record there; a record it does not know (the bucket is ahead of the
// state), a record with other hashes at the key it writes, or one that does
// not decode is an ErrConflict. The leader then proposes a Quarantine entry
// (volume, object key, reason): Apply takes the volume out of the open
// round, which completes for the others, leaves it out of later plans and
// refuses its commits with a *fsm.QuarantineError naming the key (reads of
// what the state holds keep working). Object-store failures are not
// conflicts: the round stays open and is retried. Unquarantine lifts it
// once an operator fixed or removed the object. Recovery quarantines a
// volume whose log it cannot read instead of failing for every volume.
//
// # Fencing
//
// EnsureIdentity runs on every new leader before recovery and flushing: the
// object IdentityKey fences the prefix to one cluster ID, which is also in
// the replicated state. A cluster with state refuses a prefix fenced to
// another (ErrForeignBucket) unless told to adopt it; a new cluster with
// empty state adopts the prefix's ID (disaster recovery).
//
// # Orphans
//
// CollectOrphans keeps every segment that the open round or any log record
// in the bucket names, known to the state or not, and deletes nothing of a
// volume whose log the state does not fully know (it quarantines it).
//
// # Reading
//
// Reader serves the flushed part of history: snapshots and commit metadata
// from log records, pages from segments by ranged GETs, through bounded LRU
// caches (pages, segment indexes, records). The page-version lookup is
// logarithmic in history (see Reader). Reader.ReadSnapshot needs only the
// bucket: it is the clusterless read path.
//
// # Recovery
//
// Recover runs on the first leader of a cluster with empty Raft state: it
// adopts every volume found in the bucket (head and history from the log
// records), so losing every node loses nothing that was flushed. A volume
// whose last record does not decode is quarantined, not adopted; the others
// are served.
package flusher
