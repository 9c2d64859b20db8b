// Package segment owns the immutable object-store segment format: the object
// a flush writes for one volume, holding the page versions of a contiguous
// LSN range, readable by byte range so that a reader fetches only the
// footer, the index and the pages it needs. It also owns segment IDs, the
// random names of segment objects.
//
// The package is pure: it encodes to []byte or an io.Writer and decodes from
// []byte. It has no clock, randomness, I/O or global state besides a CRC
// table; time and randomness are passed in.
//
// # Layout
//
// All integers are big-endian; every checksum is CRC-32C (Castagnoli). With
// n page versions (n >= 1) a segment is n*4112 + 64 bytes:
//
//	offset      size   region
//	0           n*4096 pages: the raw page bytes, uncompressed, in index order
//	n*4096      n*16   index: one entry per page, in the same order
//	n*4112      64     footer
//
// Index entry (16 bytes), sorted by (page_idx, lsn) ascending, no duplicates:
//
//	0   u32  page_idx  in [1, 2^32-1]
//	4   u64  lsn       in [min_lsn, max_lsn]
//	12  u32  crc       CRC-32C of the entry's 4096 page bytes
//
// Footer (64 bytes):
//
//	0   [8]  magic         "GRFTSEG1"
//	8   u16  version       1
//	10  u16  flags         0
//	12  [16] vid           volume ID (prefix byte 0x80)
//	28  u32  count         n, the number of pages and index entries
//	32  u64  min_lsn       smallest lsn of any index entry
//	40  u64  max_lsn       largest lsn of any index entry
//	48  u32  index_crc     CRC-32C of the whole index region
//	52  u64  reserved      0
//	60  u32  footer_crc    CRC-32C of footer bytes [0, 60)
//
// The index starts at count*4096 and the i-th page at i*4096, so a reader
// needs no offsets table: fetch the last 64 bytes (DecodeFooter), then
// IndexRange (DecodeIndex), then Index.Lookup and PageRange (VerifyPage).
// DecodeFooter accepts a longer tail, so a reader that guesses the index size
// can fetch footer and index with one suffix request.
//
// # Invariants
//
//   - A segment holds at least one page version, all of one volume.
//   - Pages are exactly volume.PageSize (4096) bytes and stored verbatim.
//   - Index entries are strictly ascending by (page_idx, lsn); page_idx and
//     lsn are never 0. The i-th entry describes the i-th page.
//   - min_lsn and max_lsn are exactly the smallest and largest LSN in the
//     index (both occur), so 1 <= min_lsn <= max_lsn, and count >= 2 when
//     they differ. The segment's LSN range as a flush sees it may be wider
//     (commits that wrote no pages leave no entries).
//   - The encoding is canonical: a Builder given the decoded page versions
//     of a segment re-encodes it byte for byte. Version, flags and reserved
//     are fixed; a reader rejects other values with ErrUnsupported.
//   - Integrity is layered: the footer checksum covers the footer, the
//     footer's index_crc covers the index, each entry's crc covers its page.
//     Every byte of a segment but footer_crc itself is covered by exactly one
//     checksum.
//   - Decoders (DecodeFooter, DecodeIndex, VerifyPage, Decode, ParseID,
//     IDFromBytes) never panic, reject rather than repair bad input, and
//     allocate only in proportion to their input's length: DecodeIndex
//     requires the index to be exactly count*16 bytes before allocating.
//   - A segment ID is 16 bytes: the prefix 0x81, 48-bit big-endian unix
//     milliseconds, 9 random bytes; its text form is base58 (Bitcoin
//     alphabet), always exactly 22 characters, and canonical.
//
// Every error wraps one of the sentinel errors (ErrCorrupt, ErrUnsupported,
// ErrInvalidID, ErrInvalidPage, ErrEmpty, ErrInvalidVolume).
package segment
