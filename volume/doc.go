// Package volume is the core data model of Graft page replication, shared by
// the server, the edge cache and the client: page indexes and page data,
// volume IDs, LSNs, snapshots, commit validation, commit hashes, and page
// sets (grafts). It has no I/O, clock, or global state besides a pool of
// hashers; time and randomness are passed in.
//
// # Invariants
//
//   - A page is exactly PageSize (4096) bytes. An all-zero page is "empty".
//   - A PageIdx is in [1, MaxPageIdx]; 0 is invalid. A PageSet never
//     contains 0: Add and NewPageSet ignore it, and DecodePageSet rejects an
//     encoding that holds it.
//   - A volume's page count is a uint32; every page index of a commit is at
//     most the page count the commit sets.
//   - LSNs are per volume, start at 1 and are gap-free; LSN 0 means no
//     commits yet.
//   - An ID is 16 bytes: the prefix 0x80, 48-bit big-endian unix
//     milliseconds, 9 random bytes. Its text form is base58 (Bitcoin
//     alphabet), always exactly 22 characters, and canonical: ParseID accepts
//     only what ID.String produces.
//   - A commit's pages are hashed and stored in ascending index order with no
//     duplicates; ValidateCommit establishes this and CommitHash relies on it.
//   - All multi-byte integers in hashed or serialized forms have an explicit
//     byte order: big-endian in IDs and commit hashes, little-endian in the
//     portable Roaring format that PageSet uses.
//   - Decoders (ParseID, IDFromBytes, ParseHash, HashFromBytes,
//     DecodePageSet) never panic, and reject rather than repair bad input.
//
// Every error wraps one of the sentinel errors (ErrInvalidID, ErrInvalidPage,
// ErrInvalidCommit, ErrInvalidPageSet, ErrInvalidHash).
package volume
