//go:build !graft_crashpoints || !unix

package client

// crashPoint is a test hook compiled only with -tags graft_crashpoints.
func crashPoint(string) {}
