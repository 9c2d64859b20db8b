package sqlite

import (
	"context"
	"errors"
	"fmt"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/volume"
)

func init() {
	openDirSource = func(dir string, endpoints []string) (source, func() error, error) {
		cfg := client.DefaultConfig()
		cfg.Dir, cfg.Endpoints, cfg.Logger = dir, endpoints, getLogger()
		rt, err := client.Open(context.Background(), cfg)
		if err != nil {
			return nil, nil, err
		}
		return runtimeSource{rt}, rt.Close, nil
	}
}

// RegisterRuntime makes rt available to DSNs as graft_runtime=name. The
// caller keeps owning rt (the VFS never closes it); close the databases
// before closing rt.
func RegisterRuntime(name string, rt *client.Runtime) {
	registerSource(name, runtimeSource{rt})
}

// UnregisterRuntime removes a name; databases already open keep their
// runtime.
func UnregisterRuntime(name string) { unregisterSource(name) }

type runtimeSource struct{ rt *client.Runtime }

func (s runtimeSource) open(ctx context.Context, vid volume.ID) (backend, error) {
	v, err := s.rt.Volume(ctx, vid)
	if err != nil {
		return nil, err
	}
	return clientBackend{v}, nil
}

// clientBackend adapts *client.Volume to backend, mapping its errors.
type clientBackend struct{ v *client.Volume }

func snap(s client.Snapshot) snapshot {
	return snapshot{VID: s.VID, LocalLSN: s.LocalLSN, RemoteLSN: s.RemoteLSN, PageCount: s.PageCount}
}

func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, client.ErrConcurrentWrite):
		return fmt.Errorf("%w: %w", errConcurrentWrite, err)
	case errors.Is(err, client.ErrRejected), errors.Is(err, client.ErrDiverged):
		return fmt.Errorf("%w: %w", errRemoteRejected, err)
	}
	return err
}

func (b clientBackend) VID() volume.ID     { return b.v.VID() }
func (b clientBackend) Snapshot() snapshot { return snap(b.v.Snapshot()) }
func (b clientBackend) Status() string     { return b.v.Status().String() }

func (b clientBackend) Reader() pageReader { return clientReader{b.v.Reader()} }
func (b clientBackend) Writer() pageWriter { return clientWriter{b.v.Writer()} }

func (b clientBackend) Push(ctx context.Context) error {
	_, err := b.v.Push(ctx)
	return mapErr(err)
}

func (b clientBackend) Pull(ctx context.Context) error  { return mapErr(b.v.Pull(ctx)) }
func (b clientBackend) Reset(ctx context.Context) error { return mapErr(b.v.Reset(ctx)) }

func (b clientBackend) Fork(ctx context.Context) (volume.ID, error) {
	vid, err := b.v.Fork(ctx)
	return vid, mapErr(err)
}

func (b clientBackend) Pages() pageStats {
	s := b.v.Stats()
	return pageStats{Present: s.Present, Pending: s.Pending, Fetched: s.Fetched}
}

type clientReader struct{ r *client.Reader }

func (r clientReader) Snapshot() snapshot { return snap(r.r.Snapshot()) }

func (r clientReader) ReadPage(ctx context.Context, idx volume.PageIdx) ([]byte, error) {
	return r.r.ReadPage(ctx, idx)
}

type clientWriter struct{ w *client.Writer }

func (w clientWriter) Snapshot() snapshot { return snap(w.w.Snapshot()) }

func (w clientWriter) ReadPage(ctx context.Context, idx volume.PageIdx) ([]byte, error) {
	return w.w.ReadPage(ctx, idx)
}

func (w clientWriter) WritePage(idx volume.PageIdx, page []byte) error {
	return w.w.WritePage(idx, page)
}

func (w clientWriter) SetPageCount(n uint32) { w.w.SetPageCount(n) }
func (w clientWriter) PageCount() uint32     { return w.w.PageCount() }

func (w clientWriter) Commit(ctx context.Context) (snapshot, error) {
	s, err := w.w.Commit(ctx)
	return snap(s), mapErr(err)
}
