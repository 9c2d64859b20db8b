package client

import (
	"context"
	"fmt"
	"runtime"

	"github.com/graft-cluster/graft/client/store"
	"github.com/graft-cluster/graft/volume"
)

// pinKey is a local snapshot a live Reader or Writer reads.
type pinKey struct {
	vid volume.ID
	lsn volume.LSN
}

// pin holds one pinKey in its volume's pin counts until released; a
// Reader's or Writer's pin is released when it is garbage collected, so
// Compact keeps every version a reachable reader can read.
type pin struct {
	v   *Volume
	key pinKey // guarded by v.mu
}

// pinLocked pins s; v.mu is held.
func (v *Volume) pinLocked(s Snapshot) *pin {
	p := &pin{v: v, key: pinKey{s.VID, s.LocalLSN}}
	v.pins[p.key]++
	return p
}

// repinLocked moves p to s; v.mu is held.
func (v *Volume) repinLocked(p *pin, s Snapshot) {
	v.unpinLocked(p.key)
	p.key = pinKey{s.VID, s.LocalLSN}
	v.pins[p.key]++
}

func (v *Volume) unpinLocked(k pinKey) {
	if v.pins[k]--; v.pins[k] <= 0 {
		delete(v.pins, k)
	}
}

func (p *pin) release() {
	p.v.mu.Lock()
	defer p.v.mu.Unlock()
	p.v.unpinLocked(p.key)
}

// watchPin releases p once owner is unreachable.
func watchPin[T any](owner *T, p *pin) {
	runtime.AddCleanup(owner, func(p *pin) { p.release() }, p)
}

// Compact deletes the page versions no reachable Reader or Writer, no
// recorded push and no future read can see: for each page, every version
// older than its newest one at or below the bound, where the bound is the
// oldest pinned local snapshot (Readers and Writers pin theirs until they
// are garbage collected), the recorded push's local LSN, and the latest
// local snapshot. It returns how many versions it deleted. The store only
// grows without it (every commit and pull adds versions).
func (v *Volume) Compact(ctx context.Context) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	v.syncMu.Lock()
	defer v.syncMu.Unlock()
	v.mu.Lock()
	defer v.mu.Unlock()
	vid, st := v.vid, v.state
	bound := st.LocalLSN
	if st.Push != nil {
		bound = min(bound, st.Push.UpTo)
	}
	for k := range v.pins {
		if k.vid == vid {
			bound = min(bound, k.lsn)
		}
	}
	removed := 0
	err := v.rt.store.Update(func(tx store.Tx) error {
		var (
			dead []volume.LSN // versions of cur at or below bound, oldest first
			cur  volume.PageIdx
			del  [][]byte
		)
		flush := func() {
			// Keep the newest version at or below the bound.
			for i := 0; i+1 < len(dead); i++ {
				del = append(del, pageKey(vid, cur, dead[i]))
			}
			dead = dead[:0]
		}
		err := tx.Scan(store.Pages, vid[:], func(k, _ []byte) error {
			idx, lsn, err := parsePageKey(k)
			if err != nil {
				return err
			}
			if idx != cur {
				flush()
				cur = idx
			}
			if lsn <= bound {
				dead = append(dead, lsn)
			}
			return nil
		})
		if err != nil {
			return err
		}
		flush()
		for _, k := range del {
			if err := tx.Delete(store.Pages, k); err != nil {
				return err
			}
		}
		removed = len(del)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("compact %s below local LSN %d: %w", vid, bound, err)
	}
	return removed, nil
}
