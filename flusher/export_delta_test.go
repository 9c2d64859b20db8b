package flusher

// SetDeltaCrash makes delta writes fail at a step ("before" the PUT,
// "after" it) while crash returns an error.
func SetDeltaCrash(f *Flusher, crash func(step string) error) { f.deltaCrash = crash }
