// Package faulty wraps an objstore.Store to inject faults in tests: errors
// (always, for a seeded fraction of calls, for the next n calls, before or
// after the inner call), latency (fixed plus jitter), hangs until the
// caller's context is done, and a down/up switch that fails every call
// while the store is "down". It counts calls and failures per operation, so
// a test can assert, say, the number of PUTs one flush made.
//
// Faults are chosen per operation and optionally per key prefix, can be
// changed while the store is in use, and draw their randomness from a
// math/rand/v2 PCG seeded by Config.Seed: a sequential test replays the
// same faults on every run.
//
// The wrapper adds no behaviour of its own when no fault is set: it passes
// the objstore conformance suite.
package faulty
