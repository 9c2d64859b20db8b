package cluster

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"time"

	"github.com/graft-cluster/graft/auth"
	"github.com/graft-cluster/graft/flusher"
	"github.com/graft-cluster/graft/tlsutil"
)

// Peer is one member of the static bootstrap configuration.
type Peer struct {
	ID       string
	RaftAddr string // host:port of the peer's Raft transport
	APIAddr  string // host:port of the peer's client API
}

// ParsePeer parses "id,raft_addr,api_addr".
func ParsePeer(s string) (Peer, error) {
	parts := strings.Split(s, ",")
	if len(parts) != 3 || parts[0] == "" || parts[1] == "" || parts[2] == "" {
		return Peer{}, fmt.Errorf("peer %q: want id,raft_addr,api_addr", s)
	}
	for _, a := range parts[1:] {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return Peer{}, fmt.Errorf("peer %q: address %q: %w", s, a, err)
		}
	}
	return Peer{ID: parts[0], RaftAddr: parts[1], APIAddr: parts[2]}, nil
}

// String returns the form ParsePeer reads.
func (p Peer) String() string { return p.ID + "," + p.RaftAddr + "," + p.APIAddr }

// Limits bound what clients may ask of a node. Zero disables a limit.
type Limits struct {
	// MaxPagesPerCommit caps the pages in one commit. Default 256.
	MaxPagesPerCommit int
	// MaxRequestBytes caps a commit request's encoded size, in bytes.
	// Default 4 MiB. Requests over twice this are refused by the transport
	// (resource_exhausted) before they are decoded.
	MaxRequestBytes int
	// MaxBufferBytes caps the page bytes buffered (not yet flushed) across
	// all volumes. Default 128 MiB. Enforced in Apply, deterministically.
	MaxBufferBytes uint64
	// MaxVolumeBufferBytes caps the page bytes buffered for one volume.
	// Default 64 MiB.
	MaxVolumeBufferBytes uint64
	// MaxPagesPerRead caps the pages in one ReadPages call. Default 1024.
	MaxPagesPerRead int
	// MaxCommitsPerPull caps the commits one PullCommits returns. Default 1000.
	MaxCommitsPerPull int
	// MaxReadWait caps how long a read waits for an LSN or a read index,
	// when the caller sets no deadline. Default 5s.
	MaxReadWait time.Duration
}

// RaftTuning holds the hashicorp/raft settings we expose.
type RaftTuning struct {
	// HeartbeatTimeout is the follower's leader-contact timeout. Default 500ms.
	HeartbeatTimeout time.Duration
	// ElectionTimeout is the candidate's election timeout. Default 500ms.
	ElectionTimeout time.Duration
	// LeaderLeaseTimeout is how long a leader stays leader without quorum
	// contact. Default 250ms.
	LeaderLeaseTimeout time.Duration
	// CommitTimeout bounds how long a follower may lag before a heartbeat
	// carries the commit index. Default 10ms.
	CommitTimeout time.Duration
	// MaxAppendEntries caps the entries in one disk write and one
	// AppendEntries RPC; with BatchApplyCh it is also the group-commit batch.
	// Default 128.
	MaxAppendEntries int
	// BatchApplyCh buffers the apply channel to MaxAppendEntries so
	// concurrent proposals share one log write. Default true.
	BatchApplyCh bool
	// SnapshotInterval is how often Raft checks whether to snapshot.
	// Default 30s.
	SnapshotInterval time.Duration
	// SnapshotThreshold is the log entries since the last snapshot that
	// trigger one. Default 4096.
	SnapshotThreshold uint64
	// SnapshotThresholdBytes also triggers a snapshot once the log entries
	// applied since the last one carry this many bytes: with batched or
	// large commits an entry count alone lets the log (and the replay on
	// restart) grow to gigabytes. 0 disables it. Default 256 MiB.
	SnapshotThresholdBytes uint64
	// TrailingLogs are the log entries kept after a snapshot, so a briefly
	// lagging follower catches up from the log. Default 2048.
	TrailingLogs uint64
	// LogStore is the Raft log store: "wal" (hashicorp/raft-wal, one
	// fdatasync per append) or "bolt" (raft-boltdb/v2, two). Default
	// empty: the store the data directory already holds, else "wal" (so a
	// node created when bolt was the default restarts on bolt). wal is faster (graft bench compare: 0.70x
	// bolt's p50 with one client, 1.49x its commits/s with 64; see
	// docs/BENCHMARKS.md). A data directory keeps the store it was created
	// with: opening it with the other fails with ErrLogStoreMismatch.
	LogStore string
	// NoSync turns off fsync of the Raft log. Only for benchmarks that
	// measure its cost; never in production. Default false.
	NoSync bool
}

// Config configures a Node.
type Config struct {
	// ID is the node's unique, stable Raft server ID. Required.
	ID string
	// Dir holds the Raft log, stable store and snapshots. Required.
	Dir string
	// RaftAddr is the host:port the Raft transport listens on and
	// advertises. Required unless RaftListener is set.
	RaftAddr string
	// APIAddr is the host:port the client API listens on and advertises.
	// Required unless APIListener is set.
	APIAddr string
	// RaftListener and APIListener, when set, are used instead of listening
	// on the addresses above (tests pass port-0 listeners).
	RaftListener net.Listener
	APIListener  net.Listener
	// Peers is the static cluster membership, this node included.
	Peers []Peer
	// Dial overrides, per peer ID, the addresses this node dials to reach
	// that peer (its Raft transport and its client API, for forwarding),
	// instead of the addresses the peer advertises: a proxy, a NAT. The
	// consistency suite puts a fault-injecting proxy on every link this
	// way. Default none.
	Dial map[string]Peer
	// Bootstrap bootstraps a new cluster from Peers when the node has no
	// Raft state. It is safe on every peer of a static cluster: the
	// configuration is identical, and existing state is left alone.
	Bootstrap bool
	// ObjectStore is the URL of the object store that flushed commits go to
	// and that reads of flushed history come from (see objstore.Open:
	// s3://bucket/prefix?endpoint=..., file:///dir, mem://). Empty means no
	// object store: nothing is flushed, and the buffer limits bound how much
	// a node accepts. Default empty.
	ObjectStore string
	// AdoptBucket lets this cluster take over an object-store prefix whose
	// identity object names another cluster (or does not parse): its leader
	// overwrites the object with this cluster's ID instead of refusing to
	// flush, recover or collect garbage there. For an operator who knows the
	// other cluster is gone; set it on every node (whichever leads acts),
	// and remove it once the cluster has started. A new cluster with empty
	// Raft state adopts an existing prefix's identity without it (disaster
	// recovery). Default false.
	AdoptBucket bool
	// Flush tunes the flusher (used with ObjectStore).
	Flush flusher.Config
	// Cache bounds the caches of flushed history (used with ObjectStore).
	Cache flusher.ReaderConfig
	// FlushOnLeave bounds the flush a leader runs before it hands
	// leadership over (graceful shutdown, TransferLeadership), so the next
	// leader starts with an empty buffer. 0 skips it. Default 10s.
	FlushOnLeave time.Duration
	// Limits bound client requests.
	Limits Limits
	// Raft tunes the consensus layer.
	Raft RaftTuning
	// MaxCommitBatch caps the commits the leader coalesces into one Raft
	// entry (forwarded commits included). Batches form only from commits
	// that queue while CommitBatchInFlight entries are in flight: nothing
	// waits for a batch to fill. 1 turns batching off (one entry per
	// commit, the entry format before batching). Default 128.
	MaxCommitBatch int
	// MaxCommitBatchBytes caps a batch entry's commit bytes; a commit
	// larger than this still goes, alone. Default 4 MiB.
	MaxCommitBatchBytes int
	// CommitBatchInFlight caps the batch entries proposed and not yet
	// applied; while all are in flight, new commits queue for the next
	// batch. Default 2.
	CommitBatchInFlight int
	// ForwardTimeout bounds one forwarded request when the caller set no
	// deadline. Default 10s.
	ForwardTimeout time.Duration
	// Logger receives the node's logs. Default slog.Default().
	Logger *slog.Logger
	// Pprof serves net/http/pprof under /debug/pprof/ on the API address.
	// Default false.
	Pprof bool
	// RaftLogOutput, when set, receives hashicorp/raft's own logs as
	// hclog text. Default nil: they go through Logger like every other
	// line, with node=ID and component=raft|raft-net|raft-snap.
	RaftLogOutput io.Writer
	// RaftLogLevel is hashicorp/raft's log level (trace, debug, info, warn,
	// error). Default "warn".
	RaftLogLevel string
	// TLS, when set, serves the client API over HTTPS (HTTP/2 via ALPN,
	// HTTP/1.1 too) and runs the peer links (Raft transport, forwarding)
	// over mutual TLS: a member must present a certificate of TLS's CA.
	// The holder's Reload (SIGHUP) takes effect on new connections.
	// Default nil: plaintext (h2c).
	TLS *tlsutil.Holder
	// Auth, when set, requires a bearer token on every RPC (see package
	// auth), checked before any work, with this node's replicated
	// revocation list. Default nil: no authentication.
	Auth *auth.Verifier
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	return Config{
		Limits: Limits{
			MaxPagesPerCommit:    256,
			MaxRequestBytes:      4 << 20,
			MaxBufferBytes:       128 << 20,
			MaxVolumeBufferBytes: 64 << 20,
			MaxPagesPerRead:      1024,
			MaxCommitsPerPull:    1000,
			MaxReadWait:          5 * time.Second,
		},
		Raft: RaftTuning{
			HeartbeatTimeout:       500 * time.Millisecond,
			ElectionTimeout:        500 * time.Millisecond,
			LeaderLeaseTimeout:     250 * time.Millisecond,
			CommitTimeout:          10 * time.Millisecond,
			MaxAppendEntries:       128,
			BatchApplyCh:           true,
			SnapshotInterval:       30 * time.Second,
			SnapshotThreshold:      4096,
			SnapshotThresholdBytes: 256 << 20,
			TrailingLogs:           2048,
			LogStore:               "",
		},
		MaxCommitBatch:      128,
		MaxCommitBatchBytes: 4 << 20,
		CommitBatchInFlight: 2,
		ForwardTimeout:      10 * time.Second,
		RaftLogLevel:        "warn",
		Flush:               flusher.DefaultConfig(),
		Cache:               flusher.DefaultReaderConfig(),
		FlushOnLeave:        10 * time.Second,
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.ID == "" {
		errs = append(errs, errors.New("id is required"))
	}
	if c.Dir == "" {
		errs = append(errs, errors.New("dir is required"))
	}
	if c.RaftAddr == "" && c.RaftListener == nil {
		errs = append(errs, errors.New("raft address is required"))
	}
	if c.APIAddr == "" && c.APIListener == nil {
		errs = append(errs, errors.New("api address is required"))
	}
	for id, d := range c.Dial {
		if id == "" || (d.RaftAddr == "" && d.APIAddr == "") {
			errs = append(errs, fmt.Errorf("dial override %q: want a peer id and at least one address", id))
		}
	}
	seen := map[string]bool{}
	for _, p := range c.Peers {
		if seen[p.ID] {
			errs = append(errs, fmt.Errorf("peer %s listed twice", p.ID))
		}
		seen[p.ID] = true
	}
	if c.Bootstrap && len(c.Peers) > 0 && !seen[c.ID] {
		errs = append(errs, fmt.Errorf("bootstrap peers do not include this node (%s)", c.ID))
	}
	if c.Raft.MaxAppendEntries <= 0 || c.Raft.MaxAppendEntries > 1024 {
		errs = append(errs, fmt.Errorf("raft max append entries %d out of range [1, 1024]", c.Raft.MaxAppendEntries))
	}
	if c.MaxCommitBatch > 1 && (c.MaxCommitBatchBytes <= 0 || c.CommitBatchInFlight <= 0) {
		errs = append(errs, fmt.Errorf("commit batching (max %d commits) needs max bytes (%d) and in-flight entries (%d) > 0",
			c.MaxCommitBatch, c.MaxCommitBatchBytes, c.CommitBatchInFlight))
	}
	if c.Limits.MaxPagesPerCommit < 0 || c.Limits.MaxRequestBytes < 0 || c.Limits.MaxPagesPerRead < 0 {
		errs = append(errs, errors.New("limits must not be negative"))
	}
	if c.TLS != nil && (c.TLS.Files().Cert == "" || c.TLS.Files().CA == "") {
		errs = append(errs, errors.New("tls needs a certificate, its key and a CA (--tls-cert, --tls-key, --tls-ca): members verify each other against the CA"))
	}
	if c.ObjectStore != "" {
		if err := c.Flush.Validate(); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("cluster config: %w", err)
	}
	return nil
}
