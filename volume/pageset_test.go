package volume_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"github.com/RoaringBitmap/roaring/v2"

	"github.com/graft-cluster/graft/volume"
)

func rangeSet(lo, hi volume.PageIdx) volume.PageSet {
	var s volume.PageSet
	for i := lo; i <= hi; i++ {
		s.Add(i)
	}
	return s
}

func TestPageSet_ZeroValue(t *testing.T) {
	var s volume.PageSet
	if !s.IsEmpty() || s.Len() != 0 || s.Contains(1) || s.Contains(0) {
		t.Fatalf("zero value not empty: len %d", s.Len())
	}
	if got := s.Slice(); len(got) != 0 {
		t.Fatalf("Slice() = %v", got)
	}
	if bm := s.Bitmap(); bm == nil || !bm.IsEmpty() {
		t.Fatal("Bitmap() of zero value is nil or non-empty")
	}
	if !s.Equal(volume.PageSet{}) || !s.Equal(volume.NewPageSet()) || !s.Clone().IsEmpty() {
		t.Fatal("zero value not equal to an empty set")
	}
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	d, err := volume.DecodePageSet(b)
	if err != nil || !d.IsEmpty() {
		t.Fatalf("decode of empty set: %v, len %d", err, d.Len())
	}

	s.Add(3)
	if !s.Contains(3) || s.Len() != 1 {
		t.Fatal("Add on zero value did not take")
	}

	var u volume.PageSet
	u.Union(volume.NewPageSet(4, 5))
	if !u.Equal(volume.NewPageSet(4, 5)) {
		t.Fatalf("Union into zero value = %v", u.Slice())
	}
}

func TestPageSet_Basics(t *testing.T) {
	s := volume.NewPageSet(9, 1, 0, 70000, 9, volume.MaxPageIdx)
	if want := []volume.PageIdx{1, 9, 70000, volume.MaxPageIdx}; !equalIdxs(s.Slice(), want) {
		t.Fatalf("Slice() = %v, want %v (0 ignored, dedup, ascending)", s.Slice(), want)
	}
	if s.Len() != 4 || s.Contains(0) || !s.Contains(70000) || s.Contains(2) {
		t.Fatalf("Len/Contains wrong: %v", s.Slice())
	}
	s.Add(0)
	if s.Contains(0) || s.Len() != 4 {
		t.Fatal("Add(0) was not ignored")
	}
	var n int
	for idx := range s.All() {
		if idx == 70000 {
			break
		}
		n++
	}
	if n != 2 {
		t.Fatalf("All() with early break visited %d before 70000, want 2", n)
	}
}

func TestPageSet_Union(t *testing.T) {
	tests := []struct {
		name string
		a, b volume.PageSet
		want []volume.PageIdx
	}{
		{"disjoint", volume.NewPageSet(1, 2), volume.NewPageSet(100000), []volume.PageIdx{1, 2, 100000}},
		{"overlap", volume.NewPageSet(1, 2, 3), volume.NewPageSet(2, 3, 4), []volume.PageIdx{1, 2, 3, 4}},
		{"empty other", volume.NewPageSet(7), volume.PageSet{}, []volume.PageIdx{7}},
		{"both empty", volume.PageSet{}, volume.PageSet{}, []volume.PageIdx{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bBefore := tt.b.Clone()
			tt.a.Union(tt.b)
			if !equalIdxs(tt.a.Slice(), tt.want) {
				t.Fatalf("Union = %v, want %v", tt.a.Slice(), tt.want)
			}
			if !tt.b.Equal(bBefore) {
				t.Fatalf("Union modified its argument: %v", tt.b.Slice())
			}
		})
	}

	t.Run("no sharing after union into empty", func(t *testing.T) {
		var a volume.PageSet
		b := volume.NewPageSet(1)
		a.Union(b)
		a.Add(2)
		if b.Contains(2) {
			t.Fatal("a shares memory with b after Union")
		}
	})
}

func TestPageSet_CloneEqual(t *testing.T) {
	a := rangeSet(1, 5000)
	c := a.Clone()
	c.Add(6000)
	if a.Contains(6000) || !c.Contains(6000) || a.Equal(c) {
		t.Fatal("Clone is not independent")
	}

	// Same values in run, bitmap and array layouts are Equal.
	runs := rangeSet(1, 5000)
	runs.Bitmap().RunOptimize() // layout change only; Bitmap is documented read-only for callers
	if !runs.Equal(a) || !a.Equal(runs) {
		t.Fatal("run-optimized and plain sets with the same values are not Equal")
	}
}

func TestPageSet_MarshalDoesNotMutate(t *testing.T) {
	s := rangeSet(1, 10000)
	if s.Bitmap().HasRunCompression() {
		t.Fatal("precondition: expected no run containers")
	}
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	if s.Bitmap().HasRunCompression() {
		t.Fatal("MarshalBinary run-optimized the receiver")
	}
	if len(b) > 64 {
		t.Fatalf("encoding is %d bytes, want a run-optimized encoding", len(b))
	}
}

func TestPageSet_RoundTrip(t *testing.T) {
	many := volume.PageSet{}
	for i := volume.PageIdx(1); i < 1<<20; i += 97 {
		many.Add(i)
	}
	dense := volume.PageSet{}
	for i := volume.PageIdx(1); i < 70000; i += 2 { // alternating: bitmap containers
		dense.Add(i)
	}
	tests := []struct {
		name string
		set  volume.PageSet
	}{
		{"empty", volume.PageSet{}},
		{"one", volume.NewPageSet(1)},
		{"max index", volume.NewPageSet(volume.MaxPageIdx)},
		{"array container", volume.NewPageSet(3, 5, 4096, 65535)},
		{"bitmap containers", dense},
		{"run container", rangeSet(1, 65535)},
		{"many containers with offsets", many},
		{"mixed", func() volume.PageSet {
			s := rangeSet(65536, 65536+3000)
			s.Union(dense)
			s.Union(volume.NewPageSet(1<<31, volume.MaxPageIdx))
			return s
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := tt.set.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			got, err := volume.DecodePageSet(b)
			if err != nil {
				t.Fatal(err)
			}
			if !got.Equal(tt.set) || got.Len() != tt.set.Len() {
				t.Fatalf("round trip: got %d indexes, want %d", got.Len(), tt.set.Len())
			}
			// Every prefix is truncated input and must be rejected (for
			// large encodings, a spread of prefixes and the last one).
			step := max(1, len(b)/1024)
			for n := 0; n < len(b); n += step {
				if _, err := volume.DecodePageSet(b[:n]); !errors.Is(err, volume.ErrInvalidPageSet) {
					t.Fatalf("prefix %d/%d: error %v, want ErrInvalidPageSet", n, len(b), err)
				}
			}
			for n := len(b) - 1; n >= 0 && n >= len(b)-64; n-- {
				if _, err := volume.DecodePageSet(b[:n]); !errors.Is(err, volume.ErrInvalidPageSet) {
					t.Fatalf("prefix %d/%d: error %v, want ErrInvalidPageSet", n, len(b), err)
				}
			}
			// The decoded set must not alias the input bytes.
			for i := range b {
				b[i] = 0xff
			}
			if !got.Equal(tt.set) {
				t.Fatal("decoded set changed when the input bytes were overwritten")
			}
		})
	}

	t.Run("unoptimized encodings from roaring", func(t *testing.T) {
		bm := roaring.New()
		bm.AddRange(1, 200000)
		raw, err := bm.ToBytes() // bitmap containers, no runs, no RunOptimize
		if err != nil {
			t.Fatal(err)
		}
		got, err := volume.DecodePageSet(raw)
		if err != nil || got.Len() != 199999 {
			t.Fatalf("decode = %d, %v", got.Len(), err)
		}
	})

	t.Run("UnmarshalBinary", func(t *testing.T) {
		b, _ := volume.NewPageSet(1, 2).MarshalBinary()
		var s volume.PageSet
		if err := s.UnmarshalBinary(b); err != nil || !s.Equal(volume.NewPageSet(1, 2)) {
			t.Fatalf("UnmarshalBinary = %v, %v", s.Slice(), err)
		}
		if err := s.UnmarshalBinary([]byte{1}); !errors.Is(err, volume.ErrInvalidPageSet) || !s.Equal(volume.NewPageSet(1, 2)) {
			t.Fatalf("bad UnmarshalBinary: %v, set %v", err, s.Slice())
		}
	})
}

// container describes one container of a hand-built portable encoding.
type container struct {
	key    uint16
	card   int      // header cardinality; 0 means computed
	array  []uint16 // array container values
	bitmap []uint64 // bitmap container words (1024 of them)
	runs   [][2]uint16
}

// encodeOpts controls how portable builds an encoding.
type encodeOpts struct {
	runCookie  bool // use the run cookie even without runs
	badOffsets bool
	count      int // override the container count (no-run cookie), if > 0
}

// portable hand-builds a portable Roaring encoding, so tests can express
// malformed inputs that no encoder produces.
func portable(cs []container, o encodeOpts) []byte {
	hasRun := o.runCookie
	for _, c := range cs {
		if c.runs != nil {
			hasRun = true
		}
	}
	var b []byte
	n := len(cs)
	if hasRun {
		b = binary.LittleEndian.AppendUint16(b, 12347)
		b = binary.LittleEndian.AppendUint16(b, uint16(n-1))
		isRun := make([]byte, (n+7)/8)
		for i, c := range cs {
			if c.runs != nil {
				isRun[i/8] |= 1 << (i % 8)
			}
		}
		b = append(b, isRun...)
	} else {
		b = binary.LittleEndian.AppendUint32(b, 12346)
		count := n
		if o.count > 0 {
			count = o.count
		}
		b = binary.LittleEndian.AppendUint32(b, uint32(count))
	}
	var bodies [][]byte
	for _, c := range cs {
		card := c.card
		var body []byte
		switch {
		case c.runs != nil:
			body = binary.LittleEndian.AppendUint16(body, uint16(len(c.runs)))
			total := 0
			for _, r := range c.runs {
				body = binary.LittleEndian.AppendUint16(body, r[0])
				body = binary.LittleEndian.AppendUint16(body, r[1])
				total += int(r[1]) + 1
			}
			if card == 0 {
				card = total
			}
		case c.bitmap != nil:
			pop := 0
			for _, w := range c.bitmap {
				body = binary.LittleEndian.AppendUint64(body, w)
				for ; w != 0; w &= w - 1 {
					pop++
				}
			}
			if card == 0 {
				card = pop
			}
		default:
			for _, v := range c.array {
				body = binary.LittleEndian.AppendUint16(body, v)
			}
			if card == 0 {
				card = len(c.array)
			}
		}
		b = binary.LittleEndian.AppendUint16(b, c.key)
		b = binary.LittleEndian.AppendUint16(b, uint16(card-1))
		bodies = append(bodies, body)
	}
	if !hasRun || n >= 4 {
		off := len(b) + 4*n
		for _, body := range bodies {
			if o.badOffsets {
				off++
			}
			b = binary.LittleEndian.AppendUint32(b, uint32(off))
			off += len(body)
			if o.badOffsets {
				off--
			}
		}
	}
	for _, body := range bodies {
		b = append(b, body...)
	}
	return b
}

func fullBitmap(set ...int) []uint64 {
	w := make([]uint64, 1024)
	for i := range w {
		w[i] = 0xAAAAAAAAAAAAAAAA // odd values only: 32768 of them
	}
	for _, v := range set {
		w[v/64] |= 1 << (v % 64)
	}
	return w
}

func TestDecodePageSet_Rejects(t *testing.T) {
	valid, err := volume.NewPageSet(1, 2, 3).MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	fourArrays := []container{{key: 0, array: []uint16{1}}, {key: 1, array: []uint16{1}}, {key: 2, array: []uint16{1}}, {key: 3, array: []uint16{1}}}
	fourRuns := []container{{key: 0, runs: [][2]uint16{{1, 0}}}, {key: 1, runs: [][2]uint16{{1, 0}}}, {key: 2, runs: [][2]uint16{{1, 0}}}, {key: 3, runs: [][2]uint16{{1, 0}}}}

	tests := []struct {
		name    string
		in      []byte
		wantErr string
	}{
		{"empty input", nil, "truncated: cookie needs 4 bytes"},
		{"trailing garbage", append(bytes.Clone(valid), 0), "1 trailing bytes"},
		{"trailing garbage after empty set", append(mustMarshal(t, volume.PageSet{}), 1, 2, 3), "3 trailing bytes"},
		{"truncated", valid[:len(valid)-1], "truncated"},
		{"bad cookie", []byte{1, 2, 3, 4, 0, 0, 0, 0}, "bad cookie 0x04030201"},
		{"too many containers", portable(nil, encodeOpts{count: 1<<16 + 1}), "65537 containers, at most 65536"},
		{"huge container count, tiny input", portable(nil, encodeOpts{count: 1 << 16}), "truncated: descriptive header needs 262144 bytes"},
		{"index 0 in array", portable([]container{{key: 0, array: []uint16{0, 5}}}, encodeOpts{}), "page index 0 is invalid"},
		{"index 0 in bitmap", portable([]container{{key: 0, bitmap: fullBitmap(0)}}, encodeOpts{}), "page index 0 is invalid"},
		{"index 0 in run", portable([]container{{key: 0, runs: [][2]uint16{{0, 10}}}}, encodeOpts{}), "page index 0 is invalid"},
		{"keys out of order", portable([]container{{key: 5, array: []uint16{1}}, {key: 2, array: []uint16{1}}}, encodeOpts{}), "container 1: key 2 not above previous key 5"},
		{"duplicate key", portable([]container{{key: 5, array: []uint16{1}}, {key: 5, array: []uint16{2}}}, encodeOpts{}), "key 5 not above previous key 5"},
		{"array unsorted", portable([]container{{key: 1, array: []uint16{5, 3}}}, encodeOpts{}), "array value 3 not above previous 5"},
		{"array duplicate", portable([]container{{key: 1, array: []uint16{5, 5}}}, encodeOpts{}), "array value 5 not above previous 5"},
		{"bitmap cardinality lie", portable([]container{{key: 1, bitmap: fullBitmap(), card: 40000}}, encodeOpts{}), "bitmap holds 32768 values, header says 40000"},
		{"empty run container", portable([]container{{key: 1, runs: [][2]uint16{}}}, encodeOpts{}), "run container with no runs"},
		{"run past 65535", portable([]container{{key: 1, runs: [][2]uint16{{65000, 1000}}}}, encodeOpts{}), "run 0 ends at 66000, past 65535"},
		{"runs overlap", portable([]container{{key: 1, runs: [][2]uint16{{10, 10}, {15, 1}}}}, encodeOpts{}), "run 1 starts at 15"},
		{"runs adjacent", portable([]container{{key: 1, runs: [][2]uint16{{10, 10}, {21, 1}}}}, encodeOpts{}), "run 1 starts at 21"},
		{"runs unsorted", portable([]container{{key: 1, runs: [][2]uint16{{100, 1}, {10, 1}}}}, encodeOpts{}), "run 1 starts at 10"},
		{"run cardinality lie", portable([]container{{key: 1, runs: [][2]uint16{{10, 10}}, card: 5}}, encodeOpts{}), "runs hold 11 values, header says 5"},
		{"bad offsets without runs", portable(fourArrays, encodeOpts{badOffsets: true}), "container 0: offset"},
		{"bad offsets with runs", portable(fourRuns, encodeOpts{badOffsets: true}), "container 0: offset"},
		{"run count beyond input", append(portable([]container{{key: 1, runs: [][2]uint16{{1, 1}}}}, encodeOpts{})[:9], 0xff, 0xff), "truncated: runs needs 262140 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := volume.DecodePageSet(tt.in)
			if err == nil {
				t.Fatalf("DecodePageSet = %d indexes, want error containing %q", s.Len(), tt.wantErr)
			}
			if !errors.Is(err, volume.ErrInvalidPageSet) {
				t.Errorf("error %v does not wrap ErrInvalidPageSet", err)
			}
			if !strings.HasPrefix(err.Error(), "volume: invalid page set: ") || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q, want it to contain %q", err, tt.wantErr)
			}
			if !s.IsEmpty() {
				t.Errorf("returned a non-empty set with an error")
			}
		})
	}
}

func TestDecodePageSet_BuilderAccepts(t *testing.T) {
	// The hand-built encodings, when well formed, decode: the builder is
	// faithful, so the rejections above are about the corruption alone.
	tests := []struct {
		name string
		cs   []container
		o    encodeOpts
		want int
	}{
		{"array", []container{{key: 0, array: []uint16{1, 5}}}, encodeOpts{}, 2},
		{"bitmap", []container{{key: 0, bitmap: fullBitmap()}}, encodeOpts{}, 32768},
		{"runs", []container{{key: 0, runs: [][2]uint16{{1, 9}, {20, 0}}}}, encodeOpts{}, 11},
		{"run cookie without runs", []container{{key: 0, array: []uint16{1}}}, encodeOpts{runCookie: true}, 1},
		{"four arrays with offsets", []container{{key: 0, array: []uint16{1}}, {key: 1, array: []uint16{0}}, {key: 2, array: []uint16{1}}, {key: 3, array: []uint16{1}}}, encodeOpts{}, 4},
		{"four runs with offsets", []container{{key: 0, runs: [][2]uint16{{1, 0}}}, {key: 1, runs: [][2]uint16{{0, 65535}}}, {key: 2, array: []uint16{1}}, {key: 9, bitmap: fullBitmap(0)}}, encodeOpts{}, 1 + 65536 + 1 + 32769},
		{"zero key with value 0 elsewhere", []container{{key: 1, array: []uint16{0}}}, encodeOpts{}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := volume.DecodePageSet(portable(tt.cs, tt.o))
			if err != nil {
				t.Fatal(err)
			}
			if s.Len() != tt.want {
				t.Fatalf("Len = %d, want %d", s.Len(), tt.want)
			}
		})
	}
}

func mustMarshal(t testing.TB, s volume.PageSet) []byte {
	t.Helper()
	b, err := s.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func FuzzDecodePageSet(f *testing.F) {
	seeds := []volume.PageSet{
		{},
		volume.NewPageSet(1),
		volume.NewPageSet(1, 2, 3, 70000, 1<<20, volume.MaxPageIdx),
		rangeSet(1, 5000),
		rangeSet(60000, 70000),
	}
	for _, s := range seeds {
		f.Add(mustMarshal(f, s))
	}
	four := []container{{key: 0, runs: [][2]uint16{{1, 0}}}, {key: 1, array: []uint16{0, 9}}, {key: 2, runs: [][2]uint16{{3, 4}, {100, 0}}}, {key: 3, array: []uint16{1}}}
	f.Add(portable(four, encodeOpts{}))
	f.Add(portable(four, encodeOpts{badOffsets: true}))
	f.Add(portable([]container{{key: 0, array: []uint16{0, 5}}}, encodeOpts{}))
	f.Add(portable([]container{{key: 7, bitmap: fullBitmap(3)}}, encodeOpts{}))
	f.Add(portable([]container{{key: 1, runs: [][2]uint16{{10, 10}, {15, 1}}}}, encodeOpts{}))
	raw := roaring.New()
	raw.AddRange(1, 10000)
	rawBytes, _ := raw.ToBytes()
	f.Add(rawBytes)

	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := volume.DecodePageSet(b)
		if err != nil {
			if !errors.Is(err, volume.ErrInvalidPageSet) {
				t.Fatalf("error %v does not wrap ErrInvalidPageSet", err)
			}
			if !s.IsEmpty() {
				t.Fatal("non-empty set returned with an error")
			}
			// DecodePageSet is stricter than roaring only about offsets and
			// run-container header cardinalities, which roaring ignores.
			if roaringAccepts(b) && !strings.Contains(err.Error(), "offset") && !strings.Contains(err.Error(), "runs hold") {
				t.Fatalf("rejected input that roaring accepts as valid: %v", err)
			}
			return
		}
		if s.Contains(0) {
			t.Fatal("decoded set contains index 0")
		}
		// The decoder's checks are at least as strict as roaring's own.
		if err := s.Bitmap().Validate(); err != nil {
			t.Fatalf("decoded bitmap fails roaring's Validate: %v", err)
		}
		enc, err := s.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		again, err := volume.DecodePageSet(enc)
		if err != nil {
			t.Fatalf("re-encoded set does not decode: %v", err)
		}
		if !again.Equal(s) || again.Len() != s.Len() {
			t.Fatalf("re-encoded set differs: %d vs %d indexes", again.Len(), s.Len())
		}
	})
}

// roaringAccepts reports whether roaring's own reader and Validate accept b
// as a complete bitmap without 0.
func roaringAccepts(b []byte) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	bm := roaring.New()
	n, err := bm.ReadFrom(bytes.NewReader(b))
	return err == nil && n == int64(len(b)) && bm.Validate() == nil && !bm.Contains(0)
}

// BenchmarkDecodePageSet_HostileRuns decodes a container of 32768 runs, the
// most a valid container can hold. roaring's own Validate is quadratic in
// the number of runs; DecodePageSet's check is linear.
func BenchmarkDecodePageSet_HostileRuns(b *testing.B) {
	runs := make([][2]uint16, 0, 32768)
	for v := 1; v < 65536; v += 2 {
		runs = append(runs, [2]uint16{uint16(v), 0})
	}
	enc := portable([]container{{key: 0, runs: runs}}, encodeOpts{})
	b.Run("DecodePageSet", func(b *testing.B) {
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			if _, err := volume.DecodePageSet(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("roaring.ReadFrom+Validate", func(b *testing.B) {
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			bm := roaring.New()
			if _, err := bm.ReadFrom(bytes.NewReader(enc)); err != nil {
				b.Fatal(err)
			}
			if err := bm.Validate(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
