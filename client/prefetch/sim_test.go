package prefetch_test

import (
	"math/rand/v2"
	"testing"

	"github.com/graft-cluster/graft/client/prefetch"
	"github.com/graft-cluster/graft/volume"
)

// oracle is client.Oracle, restated so this package's tests need not import
// client (which imports this package).
type oracle interface {
	Observe(idx volume.PageIdx, hit bool)
	Predict(idx volume.PageIdx, max int) []volume.PageIdx
}

var (
	_ oracle = (*prefetch.Leap)(nil)
	_ oracle = prefetch.None{}
)

// fakeVolume is a cold replica of a remote volume: present holds the pages
// the remote has (others read as zeros with no fetch), local the pages
// fetched so far. Reads go the way the replica's do: Observe, and on a miss
// of a present page, Predict and one fetch of the page plus its predicted
// pending pages.
type fakeVolume struct {
	present    func(volume.PageIdx) bool
	oracle     oracle
	maxPredict int

	local   map[volume.PageIdx]bool
	read    map[volume.PageIdx]bool
	fetched map[volume.PageIdx]bool

	roundTrips int
	reads      int
}

func newFakeVolume(pages int, o oracle) *fakeVolume {
	return &fakeVolume{
		present:    func(idx volume.PageIdx) bool { return idx >= 1 && int(idx) <= pages },
		oracle:     o,
		maxPredict: 64,
		local:      map[volume.PageIdx]bool{},
		read:       map[volume.PageIdx]bool{},
		fetched:    map[volume.PageIdx]bool{},
	}
}

// fetch is one ReadPages round trip.
func (v *fakeVolume) fetch(idxs []volume.PageIdx) {
	v.roundTrips++
	for _, idx := range idxs {
		v.fetched[idx] = true
		v.local[idx] = true
	}
}

func (v *fakeVolume) readPage(idx volume.PageIdx) {
	v.reads++
	v.read[idx] = true
	hit := v.local[idx] || !v.present(idx)
	v.oracle.Observe(idx, hit)
	if hit {
		return
	}
	batch := []volume.PageIdx{idx}
	for _, p := range v.oracle.Predict(idx, v.maxPredict) {
		if v.present(p) && !v.local[p] {
			batch = append(batch, p)
		}
	}
	v.fetch(batch)
}

type simResult struct {
	reads, distinctRead, roundTrips, fetched, neverRead int
}

func (v *fakeVolume) result() simResult {
	r := simResult{reads: v.reads, distinctRead: len(v.read), roundTrips: v.roundTrips, fetched: len(v.fetched)}
	for idx := range v.fetched {
		if !v.read[idx] {
			r.neverRead++
		}
	}
	return r
}

// overfetch is the share of fetched pages that were never read.
func (r simResult) overfetch() float64 {
	if r.fetched == 0 {
		return 0
	}
	return float64(r.neverRead) / float64(r.fetched)
}

func simulate(pages int, o oracle, reads []volume.PageIdx) simResult {
	v := newFakeVolume(pages, o)
	for _, idx := range reads {
		v.readPage(idx)
	}
	return v.result()
}

func seq(from, to, step int) []volume.PageIdx {
	var out []volume.PageIdx
	if step > 0 {
		for i := from; i <= to; i += step {
			out = append(out, volume.PageIdx(i))
		}
	} else {
		for i := from; i >= to; i += step {
			out = append(out, volume.PageIdx(i))
		}
	}
	return out
}

func TestLeap_Simulation(t *testing.T) {
	const pages = 10000
	uniform := func(n int) []volume.PageIdx {
		r := rand.New(rand.NewPCG(1, 2))
		out := make([]volume.PageIdx, n)
		for i := range out {
			out[i] = volume.PageIdx(1 + r.IntN(pages))
		}
		return out
	}
	// runs reads n runs of length pages each, from random starts.
	runs := func(n, length int) []volume.PageIdx {
		r := rand.New(rand.NewPCG(3, 4))
		var out []volume.PageIdx
		for range n {
			start := 1 + r.IntN(pages-length)
			out = append(out, seq(start, start+length-1, 1)...)
		}
		return out
	}
	cases := []struct {
		name  string
		reads []volume.PageIdx
		// maxTripsPerPage bounds round trips / distinct pages read.
		maxTripsPerPage float64
		maxOverfetch    float64
	}{
		{"sequential scan", seq(1, pages, 1), 1.0 / 6, 0.10},
		{"backward scan", seq(pages, 1, -1), 1.0 / 6, 0.10},
		{"strided scan", seq(1, pages, 3), 1.0 / 6, 0.10},
		{"backward strided scan", seq(pages, 1, -7), 1.0 / 6, 0.10},
		{"uniform random 2000 reads", uniform(2000), 1, 0.05},
		// Not targets of the issue; bounds that hold with margin, so a
		// regression in the window logic shows.
		{"scan of the first 1000 pages", seq(1, 1000, 1), 1.0 / 6, 0.10},
		{"runs of 32 pages at random starts", runs(200, 32), 1.0 / 4, 0.25},
		{"uniform random 10000 reads", uniform(10000), 1, 0.05},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := simulate(pages, prefetch.NewLeap(prefetch.DefaultLeapConfig()), tc.reads)
			none := simulate(pages, prefetch.None{}, tc.reads)
			trips := float64(r.roundTrips) / float64(r.distinctRead)
			t.Logf("%s: reads %d distinct %d round trips %d (%.4f per page; None: %d) fetched %d never read %d (overfetch %.2f%%)",
				tc.name, r.reads, r.distinctRead, r.roundTrips, trips, none.roundTrips, r.fetched, r.neverRead, 100*r.overfetch())
			if trips > tc.maxTripsPerPage {
				t.Errorf("round trips per page read = %.4f, want <= %.4f", trips, tc.maxTripsPerPage)
			}
			if r.overfetch() > tc.maxOverfetch {
				t.Errorf("overfetch = %.2f%%, want <= %.0f%%", 100*r.overfetch(), 100*tc.maxOverfetch)
			}
			if r.fetched < r.distinctRead {
				t.Errorf("fetched %d < distinct pages read %d: a read was served without its page", r.fetched, r.distinctRead)
			}
		})
	}
}
