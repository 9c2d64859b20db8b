//go:build !graft_bug_ignore_upload_error

package flusher

// plantedIgnoreUploadError is true only in binaries built with the build
// tag graft_bug_ignore_upload_error: a deliberately planted bug (a failed
// segment upload does not stop the round, which writes its log record,
// completes and trims the buffer: the pages are lost) that the
// consistency suite must catch. Never set in a real build.
const plantedIgnoreUploadError = false
