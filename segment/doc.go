// Package segment owns the immutable object-store segment format: the object
// a flush writes for one volume, holding the page versions of a contiguous
// LSN range, readable by byte range so that a reader fetches only the
// footer, the index and the pages it needs. It also owns segment IDs, the
// random names of segment objects; log records, the objects that map each
// flushed LSN to its commit and segment; and the object-store key layout
// that places both.
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
// # Log records
//
// A log record describes one flush of one volume: the contiguous LSN range
// [from, to], every commit in it, and the segment holding the pages those
// commits wrote (Record, Record.AppendBinary, DecodeRecord). With
// count = to-from+1 commits it is laid out, big-endian, as:
//
//	0   [8]  magic         "GRFTLOG1"
//	8   u16  version       1
//	10  u16  flags         0
//	12  [16] vid           volume ID (prefix byte 0x80)
//	28  u64  from          first LSN, >= 1
//	36  u64  to            last LSN, >= from
//	44  [16] segment       segment ID (prefix 0x81), or all zero: no segment
//	60  u32  count         to-from+1
//	64       commits       count times, in LSN order:
//	           0   u64  lsn            from+i for the i-th commit
//	           8   u32  page_count     the volume's page count after it
//	           12  i64  time_unix_ms   commit time
//	           20  [32] hash           commit hash
//	           52  u32  graft_len      length of graft
//	           56  [graft_len] graft   pages written: portable Roaring,
//	                                   exactly as PageSet.MarshalBinary
//	                                   writes it
//	end-4 u32 crc          CRC-32C of every byte before it
//
// A commit takes at least 56 bytes, so a decoder checks count against the
// bytes left before allocating. Every page of a graft is in
// [1, page_count]. The segment ID is zero exactly when every graft is
// empty: a flush of commits that wrote no page (they changed only the page
// count) uploads no segment. The single checksum covers the whole record,
// which is always read whole. The encoding is canonical:
// DecodeRecord accepts only what Record.AppendBinary writes, so a decoded
// record re-encodes byte for byte.
//
// # Object layout
//
// Keys are relative to the object store's prefix. Every object of a volume
// lives under "volumes/{vid}/" (VolumesPrefix, ParseVolumeKey), so one
// prefix holds, and isolates, a volume:
//
//	volumes/{vid}/segments/{sid}                  SegmentKey: a segment
//	volumes/{vid}/log/{from:020d}                 LogKey: a log record
//
// {vid} and {sid} are the 22-character base58 text forms of the IDs, and
// {from:020d} is the record's first LSN as 20 zero-padded decimal digits
// (2^64-1 has 20), so that listing LogPrefix(vid) returns the volume's log
// records in LSN order. ParseLogKey accepts exactly the keys LogKey returns
// for a valid volume ID and an LSN >= 1. A reader with only bucket access
// rebuilds every flushed snapshot of a volume from its log records and
// segments.
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
//     IDFromBytes, DecodeRecord, ParseVolumeKey, ParseLogKey) never panic,
//     reject rather than repair bad input, and allocate only in proportion
//     to their input's length: DecodeIndex requires the index to be exactly
//     count*16 bytes, and DecodeRecord at least count*56 bytes of commits,
//     before allocating.
//   - A segment ID is 16 bytes: the prefix 0x81, 48-bit big-endian unix
//     milliseconds, 9 random bytes; its text form is base58 (Bitcoin
//     alphabet), always exactly 22 characters, and canonical.
//
// Every error wraps one of the sentinel errors (ErrCorrupt, ErrUnsupported,
// ErrInvalidID, ErrInvalidPage, ErrEmpty, ErrInvalidVolume,
// ErrInvalidRecord, ErrInvalidKey).
package segment
