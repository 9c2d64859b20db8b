package flusher

import "time"

// SetClock replaces the flusher's clock (tests drive time explicitly).
func SetClock(f *Flusher, now func() time.Time) { f.now = now }

// SetCheckpointCrash makes every checkpoint fail after its PUT and before
// its Raft entry while crash returns an error.
func SetCheckpointCrash(f *Flusher, crash func() error) { f.checkpointCrash = crash }

// SetCompactCrash makes every checkpoint fail after its compacted
// segments' PUTs and before its own while crash returns an error.
func SetCompactCrash(f *Flusher, crash func() error) { f.compactCrash = crash }
