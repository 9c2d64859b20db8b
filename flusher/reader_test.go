package flusher_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graft-cluster/graft/flusher"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/objstore/faulty"
	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// gate is a store whose Gets and Lists of log records block until
// released, counting them by key.
type gate struct {
	objstore.Store
	release chan struct{}

	mu   sync.Mutex
	gets map[string]int
}

func newGate(s objstore.Store) *gate {
	return &gate{Store: s, release: make(chan struct{}), gets: map[string]int{}}
}

func (g *gate) wait(ctx context.Context, key string) error {
	if !strings.Contains(key, "/log/") {
		return nil
	}
	g.mu.Lock()
	g.gets[key]++
	g.mu.Unlock()
	select {
	case <-g.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (g *gate) Get(ctx context.Context, key string) ([]byte, error) {
	if err := g.wait(ctx, key); err != nil {
		return nil, err
	}
	return g.Store.Get(ctx, key)
}

func (g *gate) List(ctx context.Context, prefix string) ([]objstore.ObjectInfo, error) {
	if err := g.wait(ctx, prefix); err != nil {
		return nil, err
	}
	return g.Store.List(ctx, prefix)
}

func (g *gate) count() (keys, total int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	for _, n := range g.gets {
		total += n
	}
	return len(g.gets), total
}

// One slow load of a volume's index does not hold other readers of the
// volume past their own deadlines, and concurrent loads collapse into one
// fetch per record.
func TestReader_IndexLoadDoesNotBlockWaiters(t *testing.T) {
	ctx := t.Context()
	mem := objstore.NewMemory()
	e := newEnv(t, mem)
	cfg := manualConfig()
	cfg.CheckpointDeltas = false // the index load is under test, not the delta read
	fl := e.flusher(cfg)
	vid := volume.MustNewID()
	for range 3 {
		e.commit(vid, 2)
		if err := fl.FlushAll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	h := e.log.f.History(vid)
	if len(h.Froms) != 3 {
		t.Fatalf("history %+v, want 3 records", h)
	}
	g := newGate(mem)
	r, err := flusher.NewReader(g, flusher.DefaultReaderConfig())
	if err != nil {
		t.Fatal(err)
	}
	idxs := []volume.PageIdx{1, 2, 3}

	// The first reader starts the load and blocks in it.
	first := make(chan error, 1)
	go func() {
		_, err := r.ReadPages(context.Background(), h, h.Flushed, idxs)
		first <- err
	}()
	pollUntil(t, func() bool { _, n := g.count(); return n == 3 })

	// A second reader with a short deadline returns its deadline error
	// while the load is still blocked.
	second := make(chan error, 1)
	go func() {
		sctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		_, err := r.ReadPages(sctx, h, h.Flushed, idxs)
		second <- err
	}()
	select {
	case err := <-second:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("second reader: %v, want its deadline", err)
		}
		// It joined the load in flight rather than fetching on its own.
		if _, total := g.count(); total != 3 {
			t.Fatalf("%d log record fetches after the second reader, want the first reader's 3", total)
		}
	case <-time.After(20 * time.Second):
		close(g.release)
		t.Fatal("second reader still blocked behind the first one's load after 20s")
	}
	// A third reader without a deadline joins the load in flight.
	third := make(chan error, 1)
	go func() {
		_, err := r.ReadPages(context.Background(), h, h.Flushed, idxs)
		third <- err
	}()
	close(g.release)
	for i, ch := range []chan error{first, third} {
		if err := <-ch; err != nil {
			t.Fatalf("reader %d: %v", []int{1, 3}[i], err)
		}
	}
	if keys, total := g.count(); keys != 3 || total != 3 {
		t.Fatalf("%d fetches of %d log records, want one fetch of each of 3", total, keys)
	}
}

// pollUntil polls cond until it holds, failing the test after a minute.
func pollUntil(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached within a minute")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// A load that fails half way keeps the batches it fetched: the next load
// fetches only the rest.
func TestReader_LoadKeepsProgress(t *testing.T) {
	ctx := t.Context()
	mem := objstore.NewMemory()
	e := newEnv(t, mem)
	cfg := manualConfig()
	cfg.CheckpointDeltas = false // the index load is under test, not the delta read
	fl := e.flusher(cfg)
	vid := volume.MustNewID()
	const records = 300 // more than one batch of 256
	for range records {
		e.commit(vid, 1)
		if err := fl.FlushAll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	h := e.log.f.History(vid)
	if len(h.Froms) != records {
		t.Fatalf("%d records, want %d", len(h.Froms), records)
	}
	last := segment.LogKey(vid, h.Froms[records-1])
	var failed atomic.Bool
	fs, err := faulty.New(mem, faulty.Config{Seed: 1, Hook: func(_ context.Context, op faulty.Op, key string) error {
		if op == faulty.OpGet && key == last && !failed.Swap(true) {
			return errors.New("the last record is not there yet")
		}
		return nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	rc := flusher.DefaultReaderConfig()
	rc.Records = 1 // progress must come from the index, not the record cache
	r, err := flusher.NewReader(fs, rc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.ReadPages(ctx, h, h.Flushed, []volume.PageIdx{1}); err == nil {
		t.Fatal("read succeeded with the last record failing")
	}
	before := fs.Calls(faulty.OpGet)
	if _, err := r.ReadPages(ctx, h, h.Flushed, []volume.PageIdx{1}); err != nil {
		t.Fatal(err)
	}
	// The second load fetched the second batch's records only: the first
	// batch was kept.
	if got, want := fs.Calls(faulty.OpGet)-before, int64(records-256); got != want {
		t.Fatalf("second load fetched %d log records, want %d", got, want)
	}
}
