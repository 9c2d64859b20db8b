package client_test

import (
	"context"
	"testing"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/volume"
)

// Local reads and commits, no cluster: the in-memory store and bbolt.
func BenchmarkVolume_Local(b *testing.B) {
	for _, st := range []string{"mem", "bolt"} {
		cfg := client.Config{}
		if st == "bolt" {
			cfg.Dir = b.TempDir()
		}
		rt := openRT(b, cfg)
		v := mustVolume(b, rt, volume.MustNewID())
		const n = 1024
		w := v.Writer()
		for i := 1; i <= n; i++ {
			if err := w.WritePage(volume.PageIdx(i), page(byte(i))); err != nil {
				b.Fatal(err)
			}
		}
		if _, err := w.Commit(context.Background()); err != nil {
			b.Fatal(err)
		}
		b.Run(st+"/ReadPage", func(b *testing.B) {
			r := v.Reader()
			ctx := context.Background()
			b.SetBytes(volume.PageSize)
			i := 0
			for b.Loop() {
				if _, err := r.ReadPage(ctx, volume.PageIdx(1+i%n)); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run(st+"/Commit4Pages", func(b *testing.B) {
			ctx := context.Background()
			w := v.Writer()
			i := 0
			for b.Loop() {
				for j := range 4 {
					if err := w.WritePage(volume.PageIdx(1+(i*4+j)%n), page(byte(i))); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := w.Commit(ctx); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
	}
}
