package prefetch_test

import (
	"math/rand/v2"
	"testing"

	"github.com/graft-cluster/graft/client/prefetch"
	"github.com/graft-cluster/graft/volume"
)

// BenchmarkLeap measures the oracle's cost per read on the replica's read
// path: Observe on every read, Predict on every miss.
func BenchmarkLeap(b *testing.B) {
	b.Run("sequential", func(b *testing.B) {
		v := newFakeVolume(1<<30, prefetch.NewLeap(prefetch.DefaultLeapConfig()))
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			v.readPage(volume.PageIdx(1 + i%(1<<30)))
		}
	})
	b.Run("uniform random", func(b *testing.B) {
		o := prefetch.NewLeap(prefetch.DefaultLeapConfig())
		r := rand.New(rand.NewPCG(1, 2))
		b.ReportAllocs()
		for b.Loop() {
			idx := volume.PageIdx(1 + r.IntN(1<<30))
			o.Observe(idx, false)
			o.Predict(idx, 64)
		}
	})
}
