package flusher

import "time"

// SetClock replaces the flusher's clock (tests drive time explicitly).
func SetClock(f *Flusher, now func() time.Time) { f.now = now }
