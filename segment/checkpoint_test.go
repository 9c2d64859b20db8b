package segment_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

const checkpointGolden = "testdata/checkpoint-v1.golden"

func testCheckpoint() segment.Checkpoint {
	var g volume.PageSet
	g.Add(2)
	g.Add(7)
	return segment.Checkpoint{
		VID: testVID, LSN: 12, Prev: 5, LastFrom: 11,
		Commit:   segment.RecordCommit{LSN: 12, PageCount: 8, TimeUnixMs: 1700000000123, Hash: volume.Hash{1, 2, 3}, Graft: g},
		Segments: []segment.ID{sidWith(0x81, 1), sidWith(0x81, 2)},
		Pages: []segment.CheckpointPage{
			{Idx: 1, LSN: 3, Segment: 0, Pos: 0, CRC: 0xdeadbeef},
			{Idx: 2, LSN: 12, Segment: 1, Pos: 4, CRC: 0x01020304},
			{Idx: 7, LSN: 12, Segment: 1, Pos: 5, CRC: 0x0a0b0c0d},
		},
	}
}

func TestCheckpoint_Golden(t *testing.T) {
	c := testCheckpoint()
	got, err := c.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(filepath.FromSlash(checkpointGolden), got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(filepath.FromSlash(checkpointGolden))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("AppendBinary = %x, golden %x (run go test ./segment -update if the format version was bumped)", got, want)
	}
	back, err := segment.DecodeCheckpoint(want)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.Pages, c.Pages) || back.LSN != c.LSN || back.Prev != c.Prev || back.LastFrom != c.LastFrom ||
		!reflect.DeepEqual(back.Segments, c.Segments) || back.Commit.Hash != c.Commit.Hash || !back.Commit.Graft.Equal(c.Commit.Graft) {
		t.Fatalf("decoded %+v, want %+v", back, c)
	}
	if p, ok := back.Lookup(7); !ok || p.Pos != 5 {
		t.Fatalf("Lookup(7) = %+v, %v", p, ok)
	}
	if _, ok := back.Lookup(3); ok {
		t.Fatal("Lookup(3) found a page the checkpoint lacks")
	}
}

func TestCheckpoint_Invalid(t *testing.T) {
	for name, tc := range map[string]struct {
		edit func(*segment.Checkpoint)
		want string
	}{
		"last from past lsn":   {func(c *segment.Checkpoint) { c.LastFrom = 13 }, "last record from"},
		"prev not below":       {func(c *segment.Checkpoint) { c.Prev = 11 }, "previous checkpoint"},
		"commit lsn":           {func(c *segment.Checkpoint) { c.Commit.LSN = 11 }, "commit lsn"},
		"page lsn past":        {func(c *segment.Checkpoint) { c.Pages[0].LSN = 13 }, "outside"},
		"pages unsorted":       {func(c *segment.Checkpoint) { c.Pages[1].Idx = 1 }, "not ascending"},
		"ordinal out of range": {func(c *segment.Checkpoint) { c.Pages[0].Segment = 2 }, "segment ordinal"},
		"unused segment":       {func(c *segment.Checkpoint) { c.Pages[0].Segment = 1 }, "no page references"},
		"segments unsorted":    {func(c *segment.Checkpoint) { c.Segments[0], c.Segments[1] = c.Segments[1], c.Segments[0] }, "not ascending"},
	} {
		t.Run(name, func(t *testing.T) {
			c := testCheckpoint()
			tc.edit(&c)
			_, err := c.AppendBinary(nil)
			if !errors.Is(err, segment.ErrInvalidCheckpoint) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("AppendBinary error = %v, want ErrInvalidCheckpoint containing %q", err, tc.want)
			}
		})
	}
}

func TestCheckpoint_DecodeCorrupt(t *testing.T) {
	c := testCheckpoint()
	good, err := c.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range good {
		b := bytes.Clone(good)
		b[i] ^= 0x40
		if _, err := segment.DecodeCheckpoint(b); !errors.Is(err, segment.ErrCorrupt) {
			t.Fatalf("flipped byte %d: error %v, want ErrCorrupt", i, err)
		}
	}
	if _, err := segment.DecodeCheckpoint(good[:len(good)-1]); !errors.Is(err, segment.ErrCorrupt) {
		t.Fatalf("truncated: error %v, want ErrCorrupt", err)
	}
}

func TestCheckpointKey_SortsNewestFirst(t *testing.T) {
	keys := []string{segment.CheckpointKey(testVID, 1), segment.CheckpointKey(testVID, 100), segment.CheckpointKey(testVID, 99)}
	if !(keys[1] < keys[2] && keys[2] < keys[0]) {
		t.Fatalf("keys do not sort newest first: %q", keys)
	}
	for _, lsn := range []volume.LSN{1, 99, 1<<64 - 1} {
		vid, got, err := segment.ParseCheckpointKey(segment.CheckpointKey(testVID, lsn))
		if err != nil || vid != testVID || got != lsn {
			t.Fatalf("ParseCheckpointKey(CheckpointKey(%d)) = %s, %d, %v", lsn, vid, got, err)
		}
	}
	for _, bad := range []string{
		segment.CheckpointKey(testVID, 0),
		segment.LogKey(testVID, 5),
		segment.CheckpointPrefix(testVID) + "123",
	} {
		if _, _, err := segment.ParseCheckpointKey(bad); !errors.Is(err, segment.ErrInvalidKey) {
			t.Fatalf("ParseCheckpointKey(%q) error = %v, want ErrInvalidKey", bad, err)
		}
	}
}

func FuzzDecodeCheckpoint(f *testing.F) {
	c := testCheckpoint()
	good, err := c.AppendBinary(nil)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)-5])
	d := testDelta()
	if delta, err := d.AppendBinary(nil); err != nil {
		f.Fatal(err)
	} else {
		f.Add(delta)
	}
	f.Add([]byte(segment.CheckpointMagic))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := segment.DecodeCheckpoint(b)
		if err != nil {
			if !errors.Is(err, segment.ErrCorrupt) && !errors.Is(err, segment.ErrUnsupported) && !errors.Is(err, segment.ErrInvalidVolume) {
				t.Fatalf("error %v wraps none of the sentinels", err)
			}
			return
		}
		again, err := c.AppendBinary(nil)
		if err != nil {
			t.Fatalf("decoded checkpoint does not re-encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs: %x, decoded from %x", again, b)
		}
	})
}

func TestCheckpointGenKey_OrderAndParse(t *testing.T) {
	// One LSN's generations list together, generation 0 first, then the
	// newest; CheckpointListStart(L) separates L+1 and above from L and below.
	keys := []string{
		segment.CheckpointGenKey(testVID, 100, 0), segment.CheckpointGenKey(testVID, 100, 7),
		segment.CheckpointGenKey(testVID, 100, 1), segment.CheckpointGenKey(testVID, 99, 0),
		segment.CheckpointGenKey(testVID, 99, 2),
	}
	if !slices.IsSorted(keys) {
		t.Fatalf("generation keys do not sort as documented: %q", keys)
	}
	start := segment.CheckpointListStart(testVID, 99)
	if !(keys[2] < start && start < keys[3]) {
		t.Fatalf("CheckpointListStart(99) = %q does not separate %q from %q", start, keys[2], keys[3])
	}
	for _, gen := range []uint64{0, 1, 2, 1<<64 - 2} {
		for _, lsn := range []volume.LSN{1, 99, 1<<64 - 1} {
			vid, l, g, err := segment.ParseCheckpointGenKey(segment.CheckpointGenKey(testVID, lsn, gen))
			if err != nil || vid != testVID || l != lsn || g != gen {
				t.Fatalf("ParseCheckpointGenKey(CheckpointGenKey(%d, %d)) = %s, %d, %d, %v", lsn, gen, vid, l, g, err)
			}
		}
	}
	for _, bad := range []string{
		segment.CheckpointKey(testVID, 5) + ".",
		segment.CheckpointKey(testVID, 5) + ".123",
		segment.CheckpointKey(testVID, 5) + ".18446744073709551615", // generation 0 spelled out
		segment.CheckpointKey(testVID, 5) + ".1844674407370955161x",
		segment.CheckpointKey(testVID, 0) + ".18446744073709551614",
	} {
		if _, _, _, err := segment.ParseCheckpointGenKey(bad); !errors.Is(err, segment.ErrInvalidKey) {
			t.Fatalf("ParseCheckpointGenKey(%q) error = %v, want ErrInvalidKey", bad, err)
		}
	}
}
