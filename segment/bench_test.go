package segment_test

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// benchBuilder returns a builder of n random pages with indexes in
// [1, n/versions] and about versions versions each, added in random order.
func benchBuilder(b *testing.B, n int, versions uint64) *segment.Builder {
	b.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	vs := randomVersions(r, n, uint32(max(1, uint64(n)/versions)), 1, versions*4)
	bld := segment.NewBuilder(testVID)
	for _, v := range vs {
		if err := bld.Add(v.idx, v.lsn, v.page); err != nil {
			b.Fatal(err)
		}
	}
	return bld
}

// BenchmarkBuilder_Encode encodes 256 added pages (about 1 MiB).
func BenchmarkBuilder_Encode(b *testing.B) {
	bld := benchBuilder(b, 256, 1)
	b.SetBytes(bld.Size())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bld.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuilder_AppendBinary encodes the same 256 pages into a reused
// buffer: Encode without the fresh 1 MiB allocation.
func BenchmarkBuilder_AppendBinary(b *testing.B) {
	bld := benchBuilder(b, 256, 1)
	buf := make([]byte, 0, bld.Size())
	b.SetBytes(bld.Size())
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = bld.AppendBinary(buf[:0]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuilder_WriteTo streams the same 256 pages to io.Discard.
func BenchmarkBuilder_WriteTo(b *testing.B) {
	bld := benchBuilder(b, 256, 1)
	b.SetBytes(bld.Size())
	b.ReportAllocs()
	for b.Loop() {
		if _, err := bld.WriteTo(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuilder_AddEncode adds 256 pages to a reused builder, in random
// order, and encodes them: the whole cost of building a segment.
func BenchmarkBuilder_AddEncode(b *testing.B) {
	r := rand.New(rand.NewPCG(1, 2))
	vs := randomVersions(r, 256, 1<<20, 1, 64)
	bld := segment.NewBuilder(testVID)
	b.SetBytes(int64(len(vs))*(4096+16) + 64)
	b.ReportAllocs()
	for b.Loop() {
		bld.Reset(testVID)
		for _, v := range vs {
			if err := bld.Add(v.idx, v.lsn, v.page); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := bld.Encode(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecode(b *testing.B) {
	seg, err := benchBuilder(b, 256, 1).Encode()
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(seg)))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := segment.Decode(seg); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeIndex(b *testing.B) {
	for _, n := range []int{256, 16384} {
		b.Run(fmt.Sprintf("%d_entries", n), func(b *testing.B) {
			seg, err := benchBuilder(b, n, 4).Encode()
			if err != nil {
				b.Fatal(err)
			}
			f, err := segment.DecodeFooter(seg)
			if err != nil {
				b.Fatal(err)
			}
			off, size := segment.IndexRange(f)
			index := seg[off : off+size]
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := segment.DecodeIndex(f, index); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkIndex_Lookup(b *testing.B) {
	for _, n := range []int{256, 16384} {
		b.Run(fmt.Sprintf("%d_entries", n), func(b *testing.B) {
			seg, err := benchBuilder(b, n, 4).Encode()
			if err != nil {
				b.Fatal(err)
			}
			_, ix, err := segment.Decode(seg)
			if err != nil {
				b.Fatal(err)
			}
			// Random probes: present and absent pages, early and late LSNs.
			r := rand.New(rand.NewPCG(3, 4))
			entries := ix.Entries()
			type probe struct {
				idx volume.PageIdx
				at  volume.LSN
			}
			probes := make([]probe, 1024)
			for i := range probes {
				e := entries[r.IntN(len(entries))]
				probes[i] = probe{idx: e.Idx + volume.PageIdx(r.IntN(2)), at: volume.LSN(r.IntN(20))}
			}
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				p := probes[i%len(probes)]
				ix.Lookup(p.idx, p.at)
				i++
			}
		})
	}
}

// BenchmarkBuilder_Flush is the flusher's use: a fresh builder, 64 commits
// of one page each added, written to a buffer of the segment's size;
// copied into the builder's arena or shared (the FSM's pages are
// immutable).
func BenchmarkBuilder_Flush(b *testing.B) {
	pages := make([][]volume.PageWrite, 64)
	for i := range pages {
		pages[i] = []volume.PageWrite{{Idx: volume.PageIdx(i%16 + 1), Data: make([]byte, volume.PageSize)}}
	}
	for _, shared := range []bool{false, true} {
		b.Run(fmt.Sprintf("shared=%v", shared), func(b *testing.B) {
			b.SetBytes(64 * volume.PageSize)
			b.ReportAllocs()
			for b.Loop() {
				bld := segment.NewBuilder(testVID)
				for i, p := range pages {
					add := bld.AddCommit
					if shared {
						add = bld.AddCommitShared
					}
					if err := add(volume.LSN(i+1), p); err != nil {
						b.Fatal(err)
					}
				}
				var buf bytes.Buffer
				buf.Grow(int(bld.Size()))
				if _, err := bld.WriteTo(&buf); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
