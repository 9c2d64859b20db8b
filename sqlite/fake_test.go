package sqlite

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"

	"github.com/graft-cluster/graft/volume"
)

// fakeState is an immutable volume image.
type fakeState struct {
	pages map[volume.PageIdx][]byte
	count uint32
}

func (s *fakeState) read(idx volume.PageIdx) []byte {
	if p, ok := s.pages[idx]; ok && uint32(idx) <= s.count {
		return append([]byte(nil), p...)
	}
	return make([]byte, pageSize)
}

// fakeCluster is the remote side: a linear history per volume.
type fakeCluster struct {
	mu   sync.Mutex
	vols map[volume.ID][]*fakeState // index = remote LSN; [0] is empty
}

func newFakeCluster() *fakeCluster { return &fakeCluster{vols: map[volume.ID][]*fakeState{}} }

func (c *fakeCluster) head(vid volume.ID) (volume.LSN, *fakeState) {
	h := c.vols[vid]
	if len(h) == 0 {
		h = []*fakeState{{pages: map[volume.PageIdx][]byte{}}}
		c.vols[vid] = h
	}
	return volume.LSN(len(h) - 1), h[len(h)-1]
}

// fakeSource is one replica (one process's runtime) of the fake cluster.
type fakeSource struct {
	cl   *fakeCluster
	mu   sync.Mutex
	vols map[volume.ID]*fakeVol
}

func newFakeSource(cl *fakeCluster) *fakeSource {
	return &fakeSource{cl: cl, vols: map[volume.ID]*fakeVol{}}
}

func (s *fakeSource) open(_ context.Context, vid volume.ID) (backend, error) {
	return s.vol(vid), nil
}

func (s *fakeSource) vol(vid volume.ID) *fakeVol {
	s.mu.Lock()
	defer s.mu.Unlock()
	v := s.vols[vid]
	if v == nil {
		v = &fakeVol{vid: vid, cl: s.cl, state: &fakeState{pages: map[volume.PageIdx][]byte{}}}
		s.vols[vid] = v
	}
	return v
}

type fakeVol struct {
	vid volume.ID
	cl  *fakeCluster

	mu       sync.Mutex
	local    volume.LSN
	remote   volume.LSN
	pending  []*fakeState
	state    *fakeState
	rejected bool
	pushErr  error // injected: Push fails with it
	resetErr error // injected: Reset fails with it
	commits  int
	reads    int
	pushHook func() // injected: called at the start of Push, unlocked
}

func (v *fakeVol) VID() volume.ID { return v.vid }

func (v *fakeVol) snap() snapshot {
	return snapshot{VID: v.vid, LocalLSN: v.local, RemoteLSN: v.remote, PageCount: v.state.count}
}

func (v *fakeVol) Snapshot() snapshot {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.snap()
}

type fakeReader struct {
	v    *fakeVol
	s    snapshot
	data *fakeState
}

func (r *fakeReader) Snapshot() snapshot { return r.s }

func (r *fakeReader) ReadPage(_ context.Context, idx volume.PageIdx) ([]byte, error) {
	r.v.mu.Lock()
	r.v.reads++
	r.v.mu.Unlock()
	return r.data.read(idx), nil
}

func (v *fakeVol) Reader() pageReader {
	v.mu.Lock()
	defer v.mu.Unlock()
	return &fakeReader{v: v, s: v.snap(), data: v.state}
}

type fakeWriter struct {
	fakeReader
	writes map[volume.PageIdx][]byte
	count  uint32
}

func (v *fakeVol) Writer() pageWriter {
	v.mu.Lock()
	defer v.mu.Unlock()
	return &fakeWriter{fakeReader: fakeReader{v: v, s: v.snap(), data: v.state}, writes: map[volume.PageIdx][]byte{}, count: v.state.count}
}

func (w *fakeWriter) ReadPage(ctx context.Context, idx volume.PageIdx) ([]byte, error) {
	if p, ok := w.writes[idx]; ok && uint32(idx) <= w.count {
		return append([]byte(nil), p...), nil
	}
	if uint32(idx) > w.count {
		return make([]byte, pageSize), nil
	}
	return w.fakeReader.ReadPage(ctx, idx)
}

func (w *fakeWriter) WritePage(idx volume.PageIdx, page []byte) error {
	if len(page) != pageSize || idx == 0 {
		return fmt.Errorf("fake: bad page %d (%d bytes)", idx, len(page))
	}
	w.writes[idx] = append([]byte(nil), page...)
	return nil
}

func (w *fakeWriter) SetPageCount(n uint32) {
	w.count = n
	for idx := range w.writes {
		if uint32(idx) > n {
			delete(w.writes, idx)
		}
	}
}

func (w *fakeWriter) PageCount() uint32 { return w.count }

func (w *fakeWriter) Commit(context.Context) (snapshot, error) {
	return w.commit()
}

func (w *fakeWriter) commit() (snapshot, error) {
	v := w.v
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.local != w.s.LocalLSN {
		return snapshot{}, fmt.Errorf("fake: base %d, latest %d: %w", w.s.LocalLSN, v.local, errConcurrentWrite)
	}
	next := &fakeState{pages: maps.Clone(v.state.pages), count: w.count}
	for idx := range next.pages {
		if uint32(idx) > w.count {
			delete(next.pages, idx)
		}
	}
	maps.Copy(next.pages, w.writes)
	v.state = next
	v.local++
	v.commits++
	v.pending = append(v.pending, next)
	return v.snap(), nil
}

func (v *fakeVol) Push(context.Context) error {
	v.mu.Lock()
	hook := v.pushHook
	v.mu.Unlock()
	if hook != nil {
		hook()
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.pushErr != nil {
		return v.pushErr
	}
	if len(v.pending) == 0 {
		return nil
	}
	v.cl.mu.Lock()
	defer v.cl.mu.Unlock()
	head, _ := v.cl.head(v.vid)
	if head != v.remote {
		v.rejected = true
		return fmt.Errorf("fake: base %d, head %d: %w", v.remote, head, errRemoteRejected)
	}
	v.cl.vols[v.vid] = append(v.cl.vols[v.vid], v.state) // squashed
	v.remote = head + 1
	v.pending = nil
	return nil
}

func (v *fakeVol) adopt() {
	v.cl.mu.Lock()
	head, st := v.cl.head(v.vid)
	v.cl.mu.Unlock()
	v.state, v.remote, v.pending, v.rejected = st, head, nil, false
	v.local++
}

func (v *fakeVol) Pull(context.Context) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.pending) > 0 {
		return errors.New("fake: pull with pending local commits")
	}
	v.adopt()
	return nil
}

func (v *fakeVol) Reset(context.Context) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.resetErr != nil {
		return v.resetErr
	}
	v.adopt()
	return nil
}

func (v *fakeVol) Status() string {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.rejected {
		return "rejected"
	}
	return "ok"
}

func (v *fakeVol) Fork(context.Context) (volume.ID, error) {
	return volume.ID{}, errors.New("fake: fork not supported")
}

func (v *fakeVol) Pages() pageStats {
	v.mu.Lock()
	defer v.mu.Unlock()
	return pageStats{Present: uint64(len(v.state.pages))}
}
