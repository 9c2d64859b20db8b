package flusher

import (
	"context"
	"time"
)

// SetClock replaces the flusher's clock (tests drive time explicitly).
func SetClock(f *Flusher, now func() time.Time) { f.now = now }

// SetCheckpointCrash makes every checkpoint fail after its PUT and before
// its Raft entry while crash returns an error.
func SetCheckpointCrash(f *Flusher, crash func() error) { f.checkpointCrash = crash }

// SetCompactCrash makes every checkpoint fail after its compacted
// segments' PUTs and before its own while crash returns an error.
func SetCompactCrash(f *Flusher, crash func() error) { f.compactCrash = crash }

// SetGenCrash makes every checkpoint fail after each generation's PUT
// while crash returns an error.
func SetGenCrash(f *Flusher, crash func() error) { f.genCrash = crash }

// SweepGens runs GC's sweep of superseded checkpoint generations alone.
func SweepGens(ctx context.Context, f *Flusher) (int, error) { return f.sweepGens(ctx) }
