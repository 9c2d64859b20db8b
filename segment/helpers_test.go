package segment_test

import (
	"encoding/binary"
	"hash/crc32"
	"math/rand/v2"
	"testing"

	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// testVID is the fixed volume ID of most tests and the golden segment.
var testVID = volume.ID{0x80, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15}

// crc32c is an independent statement of the format's checksum.
func crc32c(b []byte) uint32 { return crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli)) }

// patternPage returns a deterministic page that differs for every (idx, lsn).
func patternPage(idx volume.PageIdx, lsn volume.LSN) []byte {
	p := make([]byte, volume.PageSize)
	for i := range p {
		p[i] = byte(uint64(i)*uint64(idx) + uint64(lsn)*31 + uint64(i>>8))
	}
	return p
}

// randomPage returns a page of random bytes from r.
func randomPage(r *rand.Rand) []byte {
	p := make([]byte, volume.PageSize)
	for i := 0; i < len(p); i += 8 {
		binary.LittleEndian.PutUint64(p[i:], r.Uint64())
	}
	return p
}

// version is one page version of a test segment.
type version struct {
	idx  volume.PageIdx
	lsn  volume.LSN
	page []byte
}

// build encodes versions, added in the given order, as a segment of vid.
func build(tb testing.TB, vid volume.ID, versions []version) []byte {
	tb.Helper()
	b := segment.NewBuilder(vid)
	for _, v := range versions {
		if err := b.Add(v.idx, v.lsn, v.page); err != nil {
			tb.Fatal(err)
		}
	}
	out, err := b.Encode()
	if err != nil {
		tb.Fatal(err)
	}
	return out
}

// rawFooter writes a footer field by field, independently of the package,
// with a correct footer checksum.
type rawFooter struct {
	magic    string
	version  uint16
	flags    uint16
	vid      volume.ID
	count    uint32
	minLSN   uint64
	maxLSN   uint64
	indexCRC uint32
	reserved uint64
}

func (r rawFooter) bytes() []byte {
	b := make([]byte, 0, 64)
	b = append(b, r.magic...)
	b = binary.BigEndian.AppendUint16(b, r.version)
	b = binary.BigEndian.AppendUint16(b, r.flags)
	b = append(b, r.vid[:]...)
	b = binary.BigEndian.AppendUint32(b, r.count)
	b = binary.BigEndian.AppendUint64(b, r.minLSN)
	b = binary.BigEndian.AppendUint64(b, r.maxLSN)
	b = binary.BigEndian.AppendUint32(b, r.indexCRC)
	b = binary.BigEndian.AppendUint64(b, r.reserved)
	return binary.BigEndian.AppendUint32(b, crc32c(b))
}

// rawIndex writes index entries field by field, independently of the
// package.
func rawIndex(entries ...segment.Entry) []byte {
	var b []byte
	for _, e := range entries {
		b = binary.BigEndian.AppendUint32(b, uint32(e.Idx))
		b = binary.BigEndian.AppendUint64(b, uint64(e.LSN))
		b = binary.BigEndian.AppendUint32(b, e.CRC)
	}
	return b
}

// testSID is the fixed segment ID of the log record tests and the golden
// log record.
var testSID = segment.ID{0x81, 0, 0, 1, 0x8b, 0xcf, 0xe5, 0x68, 9, 8, 7, 6, 5, 4, 3, 2}

// testHash returns a deterministic commit hash that differs for every lsn.
func testHash(lsn volume.LSN) volume.Hash {
	var h volume.Hash
	for i := range h {
		h[i] = byte(uint64(lsn)*7 + uint64(i))
	}
	return h
}

// graftBytes returns the portable Roaring encoding of the set of idxs, as
// volume.PageSet writes it.
func graftBytes(tb testing.TB, idxs ...volume.PageIdx) []byte {
	tb.Helper()
	b, err := volume.NewPageSet(idxs...).MarshalBinary()
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

// pageRange returns the page indexes [lo, hi].
func pageRange(lo, hi volume.PageIdx) []volume.PageIdx {
	var out []volume.PageIdx
	for idx := uint64(lo); idx <= uint64(hi); idx++ { // hi may be MaxPageIdx
		out = append(out, volume.PageIdx(idx))
	}
	return out
}

// rawRecord writes a log record field by field, independently of the
// package.
type rawRecord struct {
	magic          string
	version, flags uint16
	vid            volume.ID
	from, to       uint64
	sid            segment.ID
	count          uint32
	commits        []rawCommit
	trailing       []byte // written after the commits, before the checksum
}

// rawCommit is one commit of a rawRecord; graft_len is len(graft).
type rawCommit struct {
	lsn       uint64
	pageCount uint32
	timeMs    int64
	hash      volume.Hash
	graft     []byte
}

// body returns the record without its checksum.
func (r rawRecord) body() []byte {
	var b []byte
	b = append(b, r.magic...)
	b = binary.BigEndian.AppendUint16(b, r.version)
	b = binary.BigEndian.AppendUint16(b, r.flags)
	b = append(b, r.vid[:]...)
	b = binary.BigEndian.AppendUint64(b, r.from)
	b = binary.BigEndian.AppendUint64(b, r.to)
	b = append(b, r.sid[:]...)
	b = binary.BigEndian.AppendUint32(b, r.count)
	for _, c := range r.commits {
		b = binary.BigEndian.AppendUint64(b, c.lsn)
		b = binary.BigEndian.AppendUint32(b, c.pageCount)
		b = binary.BigEndian.AppendUint64(b, uint64(c.timeMs))
		b = append(b, c.hash[:]...)
		b = binary.BigEndian.AppendUint32(b, uint32(len(c.graft)))
		b = append(b, c.graft...)
	}
	return append(b, r.trailing...)
}

// bytes returns the record with a correct checksum.
func (r rawRecord) bytes() []byte { return withCRC(r.body()) }

// withCRC appends the CRC-32C of body to a copy of it.
func withCRC(body []byte) []byte {
	b := append([]byte(nil), body...)
	return binary.BigEndian.AppendUint32(b, crc32c(b))
}

// rawOf returns the raw form of r as the format lays it out, with the count
// taken from len(r.Commits).
func rawOf(tb testing.TB, r segment.Record) rawRecord {
	tb.Helper()
	raw := rawRecord{
		magic: "GRFTLOG1", version: 1, vid: r.VID, from: uint64(r.From), to: uint64(r.To),
		sid: r.Segment, count: uint32(len(r.Commits)),
	}
	for _, c := range r.Commits {
		g, err := c.Graft.MarshalBinary()
		if err != nil {
			tb.Fatal(err)
		}
		raw.commits = append(raw.commits, rawCommit{lsn: uint64(c.LSN), pageCount: c.PageCount, timeMs: c.TimeUnixMs, hash: c.Hash, graft: g})
	}
	return raw
}

// recordCommit returns a commit at lsn writing idxs, with a page count of
// pageCount.
func recordCommit(lsn volume.LSN, pageCount uint32, idxs ...volume.PageIdx) segment.RecordCommit {
	return segment.RecordCommit{
		LSN:        lsn,
		PageCount:  pageCount,
		TimeUnixMs: 1_700_000_000_000 + int64(lsn),
		Hash:       testHash(lsn),
		Graft:      volume.NewPageSet(idxs...),
	}
}

// goldenRecord is the log record of testdata/record-v1.golden: four commits
// of testVID at LSNs 10..13, one writing no page, with grafts holding an
// array, a run and a bitmap container, and the largest page index.
func goldenRecord() segment.Record {
	bitmap := make([]volume.PageIdx, 0, 5000)
	for i := range volume.PageIdx(5000) {
		bitmap = append(bitmap, 1<<16+2*i) // every other index: a bitmap container
	}
	return segment.Record{
		VID:     testVID,
		From:    10,
		To:      13,
		Segment: testSID,
		Commits: []segment.RecordCommit{
			recordCommit(10, 8, 1, 2, 3),
			recordCommit(11, 200),
			recordCommit(12, 1<<17, append(append([]volume.PageIdx{2}, pageRange(100, 200)...), bitmap...)...),
			recordCommit(13, volume.MaxPageIdx, volume.MaxPageIdx),
		},
	}
}

// checkRecordEqual fails unless got and want hold the same fields and sets.
func checkRecordEqual(tb testing.TB, got, want segment.Record) {
	tb.Helper()
	if got.VID != want.VID || got.From != want.From || got.To != want.To || got.Segment != want.Segment {
		tb.Fatalf("record (vid %s, lsns [%d, %d], segment %s), want (vid %s, lsns [%d, %d], segment %s)",
			got.VID, got.From, got.To, got.Segment, want.VID, want.From, want.To, want.Segment)
	}
	if len(got.Commits) != len(want.Commits) {
		tb.Fatalf("%d commits, want %d", len(got.Commits), len(want.Commits))
	}
	for i, g := range got.Commits {
		w := want.Commits[i]
		if g.LSN != w.LSN || g.PageCount != w.PageCount || g.TimeUnixMs != w.TimeUnixMs || g.Hash != w.Hash || !g.Graft.Equal(w.Graft) {
			tb.Fatalf("commits[%d] = {lsn %d, page_count %d, time %d, hash %s, %d pages}, want {lsn %d, page_count %d, time %d, hash %s, %d pages}",
				i, g.LSN, g.PageCount, g.TimeUnixMs, g.Hash, g.Graft.Len(), w.LSN, w.PageCount, w.TimeUnixMs, w.Hash, w.Graft.Len())
		}
	}
}

// encodeRecord encodes r, failing the test on error.
func encodeRecord(tb testing.TB, r segment.Record) []byte {
	tb.Helper()
	b, err := r.AppendBinary(nil)
	if err != nil {
		tb.Fatal(err)
	}
	return b
}
