package bench

import "errors"

// Sentinel errors returned by this package.
var (
	// ErrInvalidArgument is wrapped when a size, count or bucket list is out
	// of range.
	ErrInvalidArgument = errors.New("bench: invalid argument")
	// ErrNoClient is returned by RunCommit when CommitConfig.Client is nil.
	ErrNoClient = errors.New("bench: no client")
)
