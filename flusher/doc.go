// Package flusher moves acknowledged commits from the Raft-replicated
// buffer into the object store, and reads them back from there.
//
// # Rounds
//
// Only the leader flushes. A round starts when the buffer holds
// Config.TargetBytes, when the oldest unflushed commit is Config.MaxAge old,
// or on request (ClusterService.Flush, graceful shutdown, leadership
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
//     other hashes it is an alarm (ErrConflict) and the round cannot finish;
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
// records), so losing every node loses nothing that was flushed.
package flusher
