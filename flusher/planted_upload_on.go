//go:build graft_bug_ignore_upload_error

package flusher

// plantedIgnoreUploadError: see planted_upload_off.go. THIS BUILD IS
// BROKEN ON PURPOSE, to prove the consistency suite detects it.
const plantedIgnoreUploadError = true
