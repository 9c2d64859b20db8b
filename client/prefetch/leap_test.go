package prefetch_test

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/graft-cluster/graft/client/prefetch"
	"github.com/graft-cluster/graft/volume"
)

func cat(parts ...[]volume.PageIdx) []volume.PageIdx { return slices.Concat(parts...) }

func idxs(v ...uint32) []volume.PageIdx {
	out := make([]volume.PageIdx, len(v))
	for i, x := range v {
		out[i] = volume.PageIdx(x)
	}
	return out
}

// Graft v0.1.5's LeapOracle test cases (crates/graft-client/src/oracle.rs),
// on an unbounded volume with Graft's lookahead cap of 8. Misses count reads
// of pages not yet local (Graft's expected counts in the comments; ours
// differ by the first read, which has no delta here, and by Observe seeing
// the missed read's delta before Predict).
func TestLeap_Misses(t *testing.T) {
	random := idxs(1, 56, 12, 100, 124, 15550, 51, 10, 7, 4101, 23, 1, 154, 1856, 15)
	interrupted := seq(1, 100, 1)
	for i := range interrupted {
		if i%15 == 0 {
			interrupted[i] += 116589
		}
	}
	cases := []struct {
		name  string
		reads []volume.PageIdx
		want  int
	}{
		{"sequential", seq(1, 100, 1), 14},        // graft 15
		{"random", random, 14},                    // graft 14
		{"interrupted scan", interrupted, 25},     // graft 25
		{"stride 2", seq(1, 200, 2), 15},          // graft 15
		{"reverse", seq(100, 1, -1), 15},          // graft 15
		{"reverse stride 2", seq(200, 1, -2), 15}, // graft 15
		{"multi pattern", cat(seq(1, 100, 1), seq(101, 300, 2), seq(500, 301, -2), seq(600, 501, -1)), 57},                       // graft 59
		{"multi pattern random middle", cat(seq(1, 100, 1), seq(101, 300, 2), random, seq(700, 301, -4), seq(800, 701, -1)), 66}, // graft 68
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			o := prefetch.NewLeap(prefetch.LeapConfig{History: 32, MaxLookahead: 8})
			local := map[volume.PageIdx]bool{}
			misses := 0
			for _, idx := range tc.reads {
				hit := local[idx]
				o.Observe(idx, hit)
				if hit {
					continue
				}
				misses++
				local[idx] = true
				for _, p := range o.Predict(idx, 64) {
					local[p] = true
				}
			}
			t.Logf("%s: %d misses", tc.name, misses)
			if misses != tc.want {
				t.Errorf("misses = %d, want %d", misses, tc.want)
			}
		})
	}
}

// scan reads pages from..to one by one against o with a local set, and
// returns the length of every prediction made.
func windows(o *prefetch.Leap, local map[volume.PageIdx]bool, reads []volume.PageIdx, limit int) []int {
	var out []int
	for _, idx := range reads {
		hit := local[idx]
		o.Observe(idx, hit)
		if hit {
			continue
		}
		local[idx] = true
		p := o.Predict(idx, limit)
		for _, q := range p {
			local[q] = true
		}
		out = append(out, len(p))
	}
	return out
}

func TestLeap_Predict(t *testing.T) {
	t.Run("window doubles while prefetches are read, up to the cap", func(t *testing.T) {
		o := prefetch.NewLeap(prefetch.LeapConfig{History: 32, MaxLookahead: 16})
		got := windows(o, map[volume.PageIdx]bool{}, seq(1, 200, 1), 64)
		want := []int{0, 1, 2, 4, 8, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16, 16}
		if !slices.Equal(got, want) {
			t.Errorf("windows = %v, want %v", got, want)
		}
	})
	t.Run("window shrinks by half when prefetches go unread", func(t *testing.T) {
		o := prefetch.NewLeap(prefetch.LeapConfig{History: 32, MaxLookahead: 16})
		local := map[volume.PageIdx]bool{}
		windows(o, local, seq(1, 100, 1), 64)
		// The last prediction (90..105) had 11 hits: the first jump
		// prefetches 16. Then jumps of distinct lengths: every read is a
		// miss, none of the prefetched pages is read, and the window halves
		// down to 0.
		got := windows(o, local, idxs(5000, 9000, 13500, 17100, 23000, 26000, 31000), 64)
		want := []int{16, 8, 4, 2, 1, 0, 0}
		if !slices.Equal(got, want) {
			t.Errorf("windows = %v, want %v", got, want)
		}
	})
	t.Run("prefetch follows the trend", func(t *testing.T) {
		o := prefetch.NewLeap(prefetch.DefaultLeapConfig())
		for _, idx := range idxs(100, 97, 94) {
			o.Observe(idx, false)
		}
		o.Observe(91, false)
		if got, want := o.Predict(91, 64), idxs(88); !slices.Equal(got, want) {
			t.Errorf("Predict = %v, want %v", got, want)
		}
		// The prediction was read: the window doubles, along the trend.
		o.Observe(88, true)
		o.Observe(85, false)
		if got, want := o.Predict(85, 64), idxs(82, 79); !slices.Equal(got, want) {
			t.Errorf("Predict = %v, want %v", got, want)
		}
	})
	t.Run("no trend falls back to neighbours", func(t *testing.T) {
		o := prefetch.NewLeap(prefetch.DefaultLeapConfig())
		// A trend of +1 builds a window of 4...
		local := map[volume.PageIdx]bool{}
		windows(o, local, seq(1, 7, 1), 64) // predicts 3; 5,6; 8..11
		for _, idx := range seq(8, 11, 1) {
			o.Observe(idx, true)
		}
		// ...then reads scatter so that no delta is a majority.
		for _, idx := range idxs(40, 13, 70, 22, 90, 31, 150, 44, 121, 60, 300, 77, 222, 99, 400, 120, 350, 140, 500, 170) {
			o.Observe(idx, true)
		}
		o.Observe(1000, false)
		got := o.Predict(1000, 64)
		if want := idxs(1001, 999, 1002, 998, 1003, 997, 1004, 996); !slices.Equal(got, want) {
			t.Errorf("Predict = %v, want %v", got, want)
		}
	})
	t.Run("prediction stops at the ends of the index space", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			reads []volume.PageIdx
		}{
			{"down to 1", idxs(5, 4, 3, 2, 1)},
			{"up to MaxPageIdx", idxs(volume.MaxPageIdx-4, volume.MaxPageIdx-3, volume.MaxPageIdx-2, volume.MaxPageIdx-1, volume.MaxPageIdx)},
		} {
			o := prefetch.NewLeap(prefetch.DefaultLeapConfig())
			last := tc.reads[len(tc.reads)-1]
			for _, idx := range tc.reads {
				o.Observe(idx, false)
			}
			if got := o.Predict(last, 64); len(got) != 0 {
				t.Errorf("%s: Predict(%d) = %v, want none (the trend leaves the index space)", tc.name, last, got)
			}
		}
	})
	t.Run("limit caps the prediction", func(t *testing.T) {
		o := prefetch.NewLeap(prefetch.DefaultLeapConfig())
		got := windows(o, map[volume.PageIdx]bool{}, seq(1, 2000, 1), 5)
		for i, n := range got {
			if n > 5 {
				t.Fatalf("prediction %d has %d pages, limit 5", i, n)
			}
		}
		if got := o.Predict(2001, 0); got != nil {
			t.Errorf("Predict(limit 0) = %v, want nil", got)
		}
	})
	t.Run("invalid index", func(t *testing.T) {
		o := prefetch.NewLeap(prefetch.DefaultLeapConfig())
		o.Observe(0, false)
		if got := o.Predict(0, 64); got != nil {
			t.Errorf("Predict(0) = %v, want nil", got)
		}
	})
	t.Run("None predicts nothing", func(t *testing.T) {
		var o prefetch.None
		o.Observe(5, false)
		if got := o.Predict(5, 64); got != nil {
			t.Errorf("None.Predict = %v, want nil", got)
		}
	})
}

func TestLeapConfig_Validate(t *testing.T) {
	cases := []struct {
		name string
		cfg  prefetch.LeapConfig
		ok   bool
	}{
		{"default", prefetch.DefaultLeapConfig(), true},
		{"zero history", prefetch.LeapConfig{History: 0, MaxLookahead: 8}, false},
		{"history too large", prefetch.LeapConfig{History: prefetch.MaxHistory + 1, MaxLookahead: 8}, false},
		{"zero lookahead", prefetch.LeapConfig{History: 32, MaxLookahead: 0}, false},
		{"lookahead too large", prefetch.LeapConfig{History: 32, MaxLookahead: prefetch.MaxLookaheadLimit + 1}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if (err == nil) != tc.ok {
				t.Errorf("Validate() = %v, want ok=%v", err, tc.ok)
			}
			if err != nil && !errors.Is(err, prefetch.ErrInvalidConfig) {
				t.Errorf("Validate() = %v, want ErrInvalidConfig", err)
			}
		})
	}
	if got := prefetch.NewLeap(prefetch.LeapConfig{}).Config(); got != prefetch.DefaultLeapConfig() {
		t.Errorf("NewLeap(zero).Config() = %+v, want defaults", got)
	}
}

// FuzzLeap_Predict drives a Leap with arbitrary reads and checks every
// prediction: never 0, never the missed page, no duplicates, at most limit.
func FuzzLeap_Predict(f *testing.F) {
	f.Add([]byte{1, 0, 0, 0, 2, 0, 0, 0, 3, 0, 0, 0}, uint8(64), uint8(8))
	f.Add([]byte{255, 255, 255, 255, 254, 255, 255, 255, 1, 0, 0, 0}, uint8(3), uint8(1))
	f.Add([]byte{10, 0, 0, 0, 9, 0, 0, 0, 8, 0, 0, 0, 7, 0, 0, 0}, uint8(0), uint8(100))
	f.Fuzz(func(t *testing.T, data []byte, limit, lookahead uint8) {
		o := prefetch.NewLeap(prefetch.LeapConfig{History: 32, MaxLookahead: int(lookahead)})
		local := map[volume.PageIdx]bool{}
		for i := 0; i+4 <= len(data); i += 4 {
			idx := volume.PageIdx(binary.LittleEndian.Uint32(data[i:]))
			// Bit 0 of the next byte, when there is one, flips the hit flag so
			// hits on unpredicted pages are exercised too.
			hit := local[idx]
			if i+4 < len(data) && data[i+4]&0x80 != 0 {
				hit = !hit
			}
			o.Observe(idx, hit)
			if hit {
				continue
			}
			local[idx] = true
			got := o.Predict(idx, int(limit))
			if len(got) > int(limit) {
				t.Fatalf("Predict(%d, %d) returned %d pages", idx, limit, len(got))
			}
			seen := map[volume.PageIdx]bool{}
			for _, p := range got {
				if p == 0 || p == idx || seen[p] {
					t.Fatalf("Predict(%d, %d) = %v: holds 0, the page itself or a duplicate", idx, limit, got)
				}
				seen[p] = true
				local[p] = true
			}
		}
	})
}

// Readers of one volume share its oracle: concurrent calls keep every
// prediction well-formed (run with -race).
func TestLeap_Concurrent(t *testing.T) {
	o := prefetch.NewLeap(prefetch.DefaultLeapConfig())
	var wg sync.WaitGroup
	errs := make(chan string, 4)
	for g := range 4 {
		wg.Go(func() {
			for i := 1; i <= 2000; i++ {
				idx := volume.PageIdx(g*100000 + i)
				o.Observe(idx, i%3 != 0)
				got := o.Predict(idx, 16)
				if len(got) > 16 || slices.Contains(got, 0) || slices.Contains(got, idx) {
					errs <- fmt.Sprintf("Predict(%d) = %v", idx, got)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for e := range errs {
		t.Error(e)
	}
}
