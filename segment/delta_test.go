package segment_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

const deltaGolden = "testdata/delta-v1.golden"

// testDelta is a delta at 12 over the checkpoint at 5: pages 2 and 7 changed
// after 5.
func testDelta() segment.Checkpoint {
	c := testCheckpoint()
	c.Delta = true
	c.Segments = c.Segments[1:]
	c.Pages = []segment.CheckpointPage{
		{Idx: 2, LSN: 12, Segment: 0, Pos: 4, CRC: 0x01020304},
		{Idx: 7, LSN: 6, Segment: 0, Pos: 5, CRC: 0x0a0b0c0d},
	}
	return c
}

func TestDelta_Golden(t *testing.T) {
	c := testDelta()
	got, err := c.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if *update {
		if err := os.WriteFile(filepath.FromSlash(deltaGolden), got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(filepath.FromSlash(deltaGolden))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("AppendBinary = %x, golden %x", got, want)
	}
	if fl := binary.BigEndian.Uint16(want[10:]); fl != segment.CheckpointFlagDelta {
		t.Fatalf("flags = %#x, want %#x", fl, segment.CheckpointFlagDelta)
	}
	back, err := segment.DecodeCheckpoint(want)
	if err != nil {
		t.Fatal(err)
	}
	if !back.Delta || back.Prev != 5 || !reflect.DeepEqual(back.Pages, c.Pages) || !reflect.DeepEqual(back.Segments, c.Segments) {
		t.Fatalf("decoded %+v, want %+v", back, c)
	}
	// The same bytes with the flag cleared are a different (full) checkpoint
	// only after the CRC is recomputed; as stored they fail the checksum.
	b := bytes.Clone(want)
	b[11] = 0
	if _, err := segment.DecodeCheckpoint(b); !errors.Is(err, segment.ErrCorrupt) {
		t.Fatalf("flag flipped: error %v, want ErrCorrupt", err)
	}
}

func TestDelta_Invalid(t *testing.T) {
	c := testDelta()
	c.Pages[1].LSN = 5 // at the base: the base holds it, not the delta
	if _, err := c.AppendBinary(nil); !errors.Is(err, segment.ErrInvalidCheckpoint) || !strings.Contains(err.Error(), "not after its base") {
		t.Fatalf("AppendBinary error = %v, want ErrInvalidCheckpoint about the base", err)
	}
	c = testDelta()
	c.Prev, c.Pages = 0, nil // a delta over the empty volume with no page: allowed
	c.Segments = nil
	if _, err := c.AppendBinary(nil); err != nil {
		t.Fatalf("empty delta: %v", err)
	}
}

func TestDeltaKey_SortsNewestFirst(t *testing.T) {
	keys := []string{segment.DeltaKey(testVID, 1), segment.DeltaKey(testVID, 100), segment.DeltaKey(testVID, 99)}
	if !(keys[1] < keys[2] && keys[2] < keys[0]) {
		t.Fatalf("keys do not sort newest first: %q", keys)
	}
	if !strings.HasPrefix(keys[0], segment.DeltaPrefix(testVID)) || !strings.Contains(keys[0], "/deltas/") {
		t.Fatalf("key %q not under %q", keys[0], segment.DeltaPrefix(testVID))
	}
	for _, lsn := range []volume.LSN{1, 99, 1<<64 - 1} {
		vid, got, err := segment.ParseDeltaKey(segment.DeltaKey(testVID, lsn))
		if err != nil || vid != testVID || got != lsn {
			t.Fatalf("ParseDeltaKey(DeltaKey(%d)) = %s, %d, %v", lsn, vid, got, err)
		}
	}
	for _, bad := range []string{
		segment.DeltaKey(testVID, 0),
		segment.CheckpointKey(testVID, 5),
		segment.DeltaPrefix(testVID) + "123",
	} {
		if _, _, err := segment.ParseDeltaKey(bad); !errors.Is(err, segment.ErrInvalidKey) {
			t.Fatalf("ParseDeltaKey(%q) error = %v, want ErrInvalidKey", bad, err)
		}
	}
}
