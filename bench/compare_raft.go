package bench

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"

	"github.com/graft-cluster/graft/cluster"
)

// RaftCommandBytes is the size of graft's encoded commit command for pages
// pages (fsm/command.go: 3 header bytes, 88 fixed body bytes, then 4+4096
// per page): what the bare-Raft peer applies per operation, so that it
// writes and replicates exactly the bytes graft's log entry holds.
func RaftCommandBytes(pages int) int { return 3 + 88 + pages*(4+4096) }

// RaftPeer names one voter of a bare-Raft cluster.
type RaftPeer struct {
	ID   string // Raft server ID
	Addr string // host:port of its Raft transport
}

// RaftPeerConfig configures RunRaftPeer: one node of a bare hashicorp/raft
// cluster with graft's Raft settings and log store but a no-op FSM, the
// baseline graft's commit path is compared with.
type RaftPeerConfig struct {
	// ID is this node's Raft server ID; it must be among Peers. Required.
	ID string
	// Dir holds the log store (with fsync) and snapshots. Required;
	// created if missing.
	Dir string
	// LogStore is the Raft log store, as graft node's --raft-log-store:
	// "bolt" (raft-boltdb/v2) or "wal" (hashicorp/raft-wal), opened by
	// cluster.OpenLogStore exactly as a node opens it. Empty is graft's
	// default (cluster.DefaultConfig).
	LogStore string
	// RaftAddr is the host:port the Raft transport listens on and
	// advertises; required unless RaftListener is set.
	RaftAddr string
	// ControlAddr is the host:port of the control HTTP server (GET /status,
	// POST /run); required unless ControlListener is set.
	ControlAddr string
	// RaftListener and ControlListener, when set, are used instead of
	// listening on the addresses (tests pass port-0 listeners). RunRaftPeer
	// closes them.
	RaftListener, ControlListener net.Listener
	// Peers are every voter, this node included. A node without Raft state
	// bootstraps this configuration (the same on every peer, so safe).
	Peers []RaftPeer
	// LogOutput receives hashicorp/raft's own log at warn and above; nil
	// discards it. Default nil.
	LogOutput io.Writer
	// Logger receives the peer's events; nil discards them. Default nil.
	Logger *slog.Logger
}

// Validate reports the first missing or inconsistent field, wrapping
// ErrInvalidArgument.
func (c RaftPeerConfig) Validate() error {
	switch {
	case c.ID == "":
		return fmt.Errorf("validate raft peer: id is required: %w", ErrInvalidArgument)
	case c.Dir == "":
		return fmt.Errorf("validate raft peer: dir is required: %w", ErrInvalidArgument)
	case c.RaftAddr == "" && c.RaftListener == nil:
		return fmt.Errorf("validate raft peer: raft address is required: %w", ErrInvalidArgument)
	case c.ControlAddr == "" && c.ControlListener == nil:
		return fmt.Errorf("validate raft peer: control address is required: %w", ErrInvalidArgument)
	}
	for _, p := range c.Peers {
		if p.ID == c.ID {
			return nil
		}
	}
	return fmt.Errorf("validate raft peer: id %q is not among the %d peers: %w", c.ID, len(c.Peers), ErrInvalidArgument)
}

// RaftPeerStatus is the JSON of GET /status.
type RaftPeerStatus struct {
	ID     string `json:"id"`
	State  string `json:"state"`  // raft.RaftState: Follower, Candidate, Leader, Shutdown
	Leader string `json:"leader"` // the leader's ID as this node knows it, or ""
}

// RunRaftPeer runs one bare-Raft node until ctx ends, then shuts it down.
// Its control server answers GET /status with a RaftPeerStatus and, on the
// leader only, POST /run?clients=N&pages=P&warmup=D&duration=D with a
// CellResult: N closed-loop workers each Apply a RaftCommandBytes(P) command
// and wait for its future (quorum fsync, then the no-op FSM), the same loop
// as the graft and etcd cells. One run at a time; a follower answers 409.
func RunRaftPeer(ctx context.Context, cfg RaftPeerConfig) (err error) {
	if err := cfg.Validate(); err != nil {
		return err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(cfg.Dir, 0o755); err != nil {
		return fmt.Errorf("create raft peer dir: %w", err)
	}
	rl, cl := cfg.RaftListener, cfg.ControlListener
	defer func() {
		for _, l := range []net.Listener{rl, cl} {
			if l != nil {
				l.Close()
			}
		}
	}()
	if rl == nil {
		if rl, err = net.Listen("tcp", cfg.RaftAddr); err != nil {
			return fmt.Errorf("listen raft: %w", err)
		}
	}
	if cl == nil {
		if cl, err = net.Listen("tcp", cfg.ControlAddr); err != nil {
			return fmt.Errorf("listen control: %w", err)
		}
	}
	out := cfg.LogOutput
	if out == nil {
		out = io.Discard
	}
	hlog := hclog.New(&hclog.LoggerOptions{Name: "raft " + cfg.ID, Level: hclog.Warn, Output: out})

	store, err := cluster.OpenLogStore(cfg.Dir, cluster.RaftTuning{LogStore: cfg.LogStore}) // with fdatasync
	if err != nil {
		return fmt.Errorf("open raft log: %w", err)
	}
	defer func() {
		if cerr := store.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("close raft log: %w", cerr)
		}
	}()
	logs := cluster.NewLogCache(store)
	snaps, err := raft.NewFileSnapshotStoreWithLogger(cfg.Dir, 2, hlog)
	if err != nil {
		return fmt.Errorf("open snapshot store: %w", err)
	}
	// graft's own stream layer, transport settings and Raft settings
	// (cluster.DefaultConfig): the baseline differs from a node only in
	// its FSM and in having no RPC layer.
	stream, err := cluster.NewStreamLayer(rl)
	if err != nil {
		return err
	}
	rl = nil // the transport closes it
	trans := raft.NewNetworkTransportWithConfig(cluster.TransportConfig(stream, hlog))
	defer trans.Close()

	rc := cluster.DefaultConfig().Raft.RaftConfig(cfg.ID, hlog)
	has, err := raft.HasExistingState(logs, store, snaps)
	if err != nil {
		return fmt.Errorf("check raft state: %w", err)
	}
	if !has {
		var conf raft.Configuration
		for _, p := range cfg.Peers {
			conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.Addr)})
		}
		if err := raft.BootstrapCluster(rc, logs, store, snaps, trans, conf); err != nil {
			return fmt.Errorf("bootstrap: %w", err)
		}
	}
	r, err := raft.NewRaft(rc, nopFSM{}, logs, store, snaps, trans)
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	defer func() {
		if serr := r.Shutdown().Error(); serr != nil && err == nil {
			err = fmt.Errorf("shut down raft: %w", serr)
		}
	}()

	srv := &http.Server{Handler: raftControl(cfg.ID, r, logger), ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	ctl := cl
	cl = nil // the server closes it
	go func() { serveErr <- srv.Serve(ctl) }()
	logger.Info("bare raft peer up", "id", cfg.ID, "raft", trans.LocalAddr(), "peers", len(cfg.Peers))
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		return fmt.Errorf("serve control: %w", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = srv.Shutdown(sctx) // a run in flight ends with its request's context
	<-serveErr
	return nil
}

// raftControl is the control server's handler.
func raftControl(id string, r *raft.Raft, logger *slog.Logger) http.Handler {
	var running sync.Mutex
	mux := http.NewServeMux()
	mux.HandleFunc("GET /status", func(w http.ResponseWriter, _ *http.Request) {
		_, leader := r.LeaderWithID()
		writeJSON(w, http.StatusOK, RaftPeerStatus{ID: id, State: r.State().String(), Leader: string(leader)})
	})
	mux.HandleFunc("POST /run", func(w http.ResponseWriter, req *http.Request) {
		q := req.URL.Query()
		clients, err1 := strconv.Atoi(q.Get("clients"))
		pages, err2 := strconv.Atoi(q.Get("pages"))
		warmup, err3 := time.ParseDuration(q.Get("warmup"))
		duration, err4 := time.ParseDuration(q.Get("duration"))
		if err := errors.Join(err1, err2, err3, err4); err != nil || pages < 1 {
			http.Error(w, "want clients, pages >= 1, warmup and duration", http.StatusBadRequest)
			return
		}
		if !running.TryLock() {
			http.Error(w, "a run is in progress", http.StatusConflict)
			return
		}
		defer running.Unlock()
		if r.State() != raft.Leader {
			http.Error(w, "not the leader", http.StatusConflict)
			return
		}
		size := RaftCommandBytes(pages)
		logger.Info("run", "clients", clients, "pages", pages, "bytes", size, "warmup", warmup, "duration", duration)
		res, err := closedLoop(req.Context(), clients, warmup, duration, func(_ context.Context, w int, n uint64) error {
			// A fresh buffer per command, as graft encodes one per commit:
			// the log cache keeps a reference to the entry's data.
			cmd := make([]byte, size)
			binary.BigEndian.PutUint64(cmd[3:], uint64(w)<<40|n)
			return r.Apply(cmd, 0).Error()
		})
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		res.Pages, res.PayloadBytes = pages, size
		writeJSON(w, http.StatusOK, res)
	})
	return mux
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// nopFSM applies nothing: the bare-Raft baseline measures replication and
// the log store alone.
type nopFSM struct{}

func (nopFSM) Apply(*raft.Log) any                 { return nil }
func (nopFSM) Snapshot() (raft.FSMSnapshot, error) { return nopSnapshot{}, nil }
func (nopFSM) Restore(rc io.ReadCloser) error {
	_, err := io.Copy(io.Discard, rc)
	return errors.Join(err, rc.Close())
}

type nopSnapshot struct{}

func (nopSnapshot) Persist(sink raft.SnapshotSink) error { return sink.Close() }
func (nopSnapshot) Release()                             {}
