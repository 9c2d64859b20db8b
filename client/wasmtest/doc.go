// Package wasmtest holds tests of the client core that run under
// GOOS=js GOARCH=wasm (make wasm runs them with Node when it is installed):
// the replica on an in-memory store, and Config.Dir refused.
package wasmtest
