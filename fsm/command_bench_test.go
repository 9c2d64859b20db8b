package fsm

import (
	"testing"

	"github.com/graft-cluster/graft/volume"
)

// BenchmarkDecodeCommand decodes what every replica decodes per entry: a
// batch of 64 one-page commits, and one 16-page commit.
func BenchmarkDecodeCommand(b *testing.B) {
	data := make([]byte, volume.PageSize)
	commit := func(pages int) *CommitCommand {
		c := &CommitCommand{VID: volume.MustNewID(), BaseLSN: 7, PageCount: 64}
		for i := range pages {
			c.Pages = append(c.Pages, volume.PageWrite{Idx: volume.PageIdx(i + 1), Data: data})
		}
		return c
	}
	var batch []*CommitCommand
	for range 64 {
		batch = append(batch, commit(1))
	}
	for _, bc := range []struct {
		name  string
		entry []byte
	}{
		{"batch64x1", EncodeCommitBatch(batch)},
		{"commit16", EncodeCommit(commit(16))},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := decodeCommand(bc.entry); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
