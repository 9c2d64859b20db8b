package client

type syncLoop struct{}

// StopSync stops the volume's background sync loop, if any, and waits.
func (v *Volume) StopSync() {}
