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
