package main

import (
	"context"
	cryptorand "crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/flusher"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/volume"
)

func runVolume(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return subcommands(ctx, "volume", args, stdout, stderr, map[string]command{
		"create": {"print a new volume ID (a volume exists from its first commit)", volumeCreate},
		"commit": {"commit pages to a volume", volumeCommit},
		"read":   {"write pages' raw bytes (4096 each) to stdout (--dir: through a local replica)", volumeRead},
		"pull":   {"show the pages changed between two LSNs (a graft); --dir: fast-forward a local replica", volumePull},
		"info":   {"show a volume's snapshot", volumeInfo},
		"log":    {"list a volume's commits", volumeLog},
		"write":  {"commit pages to a local replica (--dir), pushed later", replicaWrite},
		"push":   {"push a local replica's commits (--dir)", replicaPush},
		"status": {"show a local replica (--dir): local vs remote LSN, pending pages, fetch counters", replicaStatus},
		"reset":  {"drop a local replica's unpushed commits, adopt the remote head (--dir)", replicaReset},
		"delete": {"delete a volume: its commits and reads answer not_found, GC removes its objects", volumeDelete},
	})
}

// clientFlags are the flags every client command shares.
type clientFlags struct {
	endpoints   string
	ca          string
	token       string
	json        bool
	timeout     time.Duration
	consistency string
	minLSN      uint64
}

// EndpointEnv names the environment variable that, when set, replaces
// http://127.0.0.1:7001 as the default --endpoint of the client commands.
const EndpointEnv = "GRAFT_ENDPOINT"

// defaultEndpoint is $GRAFT_ENDPOINT, else fallback.
func defaultEndpoint(fallback string) string {
	if v := strings.TrimSpace(os.Getenv(EndpointEnv)); v != "" {
		return v
	}
	return fallback
}

func (c *clientFlags) register(fs flagSet, reads bool) {
	fs.StringVar(&c.endpoints, "endpoint", defaultEndpoint("http://127.0.0.1:7001"), "cluster endpoint(s), comma-separated; $"+EndpointEnv+" sets the default")
	fs.StringVar(&c.ca, "ca", "", "PEM CA bundle to verify https:// endpoints with (default: the system roots)")
	fs.StringVar(&c.token, "token", "", "bearer token (graft token issue); default $"+TokenEnv)
	fs.BoolVar(&c.json, "json", false, "print JSON")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "overall timeout")
	if reads {
		fs.StringVar(&c.consistency, "consistency", "linearizable", "read consistency: linearizable, at-least-lsn, stale")
		fs.Uint64Var(&c.minLSN, "min-lsn", 0, "with --consistency at-least-lsn: the LSN to wait for")
	}
}

type flagSet interface {
	StringVar(p *string, name, value, usage string)
	BoolVar(p *bool, name string, value bool, usage string)
	DurationVar(p *time.Duration, name string, value time.Duration, usage string)
	Uint64Var(p *uint64, name string, value uint64, usage string)
}

// client returns a client of --endpoint, --ca and --token, with extra
// options after those.
func (c *clientFlags) client(extra ...client.Option) (*client.Client, error) {
	opts, err := clientSecurity(c.ca, or(c.token, os.Getenv(TokenEnv)))
	if err != nil {
		return nil, err
	}
	return client.New(strings.Split(c.endpoints, ","), append(opts, extra...)...)
}

func (c *clientFlags) readOptions() (client.ReadOptions, error) {
	ro := client.ReadOptions{MinLSN: volume.LSN(c.minLSN)}
	switch c.consistency {
	case "linearizable", "":
		ro.Consistency = client.Linearizable
	case "at-least-lsn":
		ro.Consistency = client.AtLeastLSN
	case "stale":
		ro.Consistency = client.Stale
	default:
		return ro, fmt.Errorf("consistency %q: want linearizable, at-least-lsn or stale", c.consistency)
	}
	return ro, nil
}

// printResult prints v as JSON with --json, else the human text.
func printResult(w io.Writer, asJSON bool, v any, human string) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	_, err := fmt.Fprintln(w, human)
	return err
}

type snapshotJSON struct {
	VID       string `json:"vid"`
	LSN       uint64 `json:"lsn"`
	PageCount uint32 `json:"page_count"`
}

func snapJSON(s volume.Snapshot) snapshotJSON {
	return snapshotJSON{VID: s.VID.String(), LSN: uint64(s.LSN), PageCount: s.PageCount}
}

// parseWithVID parses flags and the single positional volume ID, wherever it stands among
// the flags.
func parseWithVID(fs interface {
	Parse([]string) error
	Args() []string
}, args []string) (volume.ID, error) {
	var vidArg string
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		vidArg, args = args[0], args[1:]
	}
	if err := fs.Parse(args); err != nil {
		return volume.ID{}, err
	}
	rest := fs.Args()
	if vidArg == "" && len(rest) > 0 {
		vidArg, rest = rest[0], rest[1:]
	}
	if len(rest) > 0 {
		return volume.ID{}, fmt.Errorf("unexpected arguments %q", rest)
	}
	if vidArg == "" {
		return volume.ID{}, fmt.Errorf("missing volume ID")
	}
	return volume.ParseID(vidArg)
}

func helpRequested(args []string) bool {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			return true
		}
	}
	return false
}

func volumeCreate(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("volume create", "volume create [--json]", stderr)
	asJSON := fs.Bool("json", false, "print JSON")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	vid, err := volume.NewID(time.Now(), randReader)
	if err != nil {
		return err
	}
	return printResult(stdout, *asJSON, map[string]string{"vid": vid.String()}, vid.String())
}

// pageFlags collect --page IDX=VALUE.
type pageFlags []string

func (p *pageFlags) String() string     { return strings.Join(*p, " ") }
func (p *pageFlags) Set(v string) error { *p = append(*p, v); return nil }

// parsePage reads IDX=@FILE (the file's bytes) or IDX=TEXT (the text's
// bytes); shorter content is padded with zeros to 4096 bytes.
func parsePage(s string) (volume.PageWrite, error) {
	idxStr, val, ok := strings.Cut(s, "=")
	if !ok {
		return volume.PageWrite{}, fmt.Errorf("page %q: want IDX=@FILE or IDX=TEXT", s)
	}
	idx, err := strconv.ParseUint(idxStr, 10, 32)
	if err != nil {
		return volume.PageWrite{}, fmt.Errorf("page %q: index: %w", s, err)
	}
	if idx == 0 {
		return volume.PageWrite{}, fmt.Errorf("page %q: pages start at 1", s)
	}
	var data []byte
	if path, ok := strings.CutPrefix(val, "@"); ok {
		if data, err = os.ReadFile(path); err != nil {
			return volume.PageWrite{}, fmt.Errorf("page %d: %w", idx, err)
		}
	} else {
		data = []byte(val)
	}
	if len(data) > volume.PageSize {
		return volume.PageWrite{}, fmt.Errorf("page %d: %d bytes, more than a page (%d); write a larger file with --file %s --at %d", idx, len(data), volume.PageSize, or(strings.TrimPrefix(val, "@"), "FILE"), idx)
	}
	page := make([]byte, volume.PageSize)
	copy(page, data)
	return volume.PageWrite{Idx: volume.PageIdx(idx), Data: page}, nil
}

// filePages splits data (the file name) into consecutive pages from at,
// the last one zero-padded.
func filePages(name string, data []byte, at uint64) ([]volume.PageWrite, error) {
	if at == 0 || at > volume.MaxPageIdx {
		return nil, fmt.Errorf("--at %d: want a page index in [1, %d]", at, uint64(volume.MaxPageIdx))
	}
	if len(data) == 0 {
		return nil, fmt.Errorf("--file %s is empty: nothing to write", name)
	}
	n := (uint64(len(data)) + volume.PageSize - 1) / volume.PageSize
	if last := at + n - 1; last > volume.MaxPageIdx {
		return nil, fmt.Errorf("--file %s: %d bytes need pages %d-%d, past the last page index %d", name, len(data), at, last, uint64(volume.MaxPageIdx))
	}
	writes := make([]volume.PageWrite, 0, n)
	for i := range n {
		page := make([]byte, volume.PageSize)
		copy(page, data[i*volume.PageSize:])
		writes = append(writes, volume.PageWrite{Idx: volume.PageIdx(at + i), Data: page})
	}
	return writes, nil
}

// readFileArg reads --file's argument; - is stdin.
func readFileArg(name string, stdin io.Reader) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(stdin)
	}
	return os.ReadFile(name)
}

// commitPages assembles a commit from --page values and the --file pages,
// refusing a page written twice.
func commitPages(pages []string, file string, fileWrites []volume.PageWrite) ([]volume.PageWrite, error) {
	from := map[volume.PageIdx]string{}
	var writes []volume.PageWrite
	add := func(w volume.PageWrite, src string) error {
		if prev, ok := from[w.Idx]; ok {
			return fmt.Errorf("page %d is written twice: by %s and by %s", w.Idx, prev, src)
		}
		from[w.Idx] = src
		writes = append(writes, w)
		return nil
	}
	for _, p := range pages {
		w, err := parsePage(p)
		if err != nil {
			return nil, err
		}
		if err := add(w, "--page "+p); err != nil {
			return nil, err
		}
	}
	if len(fileWrites) > 0 {
		src := fmt.Sprintf("--file %s (pages %d-%d)", file, fileWrites[0].Idx, fileWrites[len(fileWrites)-1].Idx)
		for _, w := range fileWrites {
			if err := add(w, src); err != nil {
				return nil, err
			}
		}
	}
	return writes, nil
}

func volumeCommit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cc := newClientCmd("volume commit", "volume commit VID [--page IDX=@FILE|IDX=TEXT]... [--file FILE --at IDX] [--base LSN] [--page-count N]", false, stdout, stderr)
	fs := cc.fs
	var pages pageFlags
	fs.Var(&pages, "page", "a page to write: IDX=@FILE or IDX=TEXT, at most 4096 bytes, zero-padded to 4096 (repeatable)")
	file := fs.String("file", "", "a file of any size to write across consecutive pages from --at, the last one zero-padded (- reads stdin)")
	at := fs.Uint64("at", 1, "with --file: the page the file starts at")
	base := fs.Int64("base", -1, "base LSN the commit builds on (default: the current head, read linearizably)")
	pageCount := fs.Int64("page-count", -1, "the volume's size in pages after the commit (default: max of the head's and the highest page written)")
	vid, err := cc.parseVID(args)
	if err != nil {
		return err
	}
	atSet := false
	fs.Visit(func(f *flag.Flag) { atSet = atSet || f.Name == "at" })
	var fileWrites []volume.PageWrite
	switch {
	case *file != "":
		data, err := readFileArg(*file, os.Stdin)
		if err != nil {
			return fmt.Errorf("--file: %w", err)
		}
		if fileWrites, err = filePages(*file, data, *at); err != nil {
			return err
		}
	case atSet:
		return errors.New("--at needs --file")
	}
	writes, err := commitPages(pages, *file, fileWrites)
	if err != nil {
		return err
	}
	var maxIdx uint32
	for _, w := range writes {
		maxIdx = max(maxIdx, uint32(w.Idx))
	}
	return cc.call(ctx, func(ctx context.Context, c *client.Client) error {
		b, pc := volume.LSN(*base), uint32(*pageCount)
		if *base < 0 || *pageCount < 0 {
			head, err := c.Snapshot(ctx, vid, 0, client.ReadOptions{})
			if err != nil {
				return fmt.Errorf("read head: %w", err)
			}
			if *base < 0 {
				b = head.LSN
			}
			if *pageCount < 0 {
				pc = max(head.PageCount, maxIdx)
			}
		}
		snap, err := c.Commit(ctx, vid, b, pc, writes)
		if err != nil {
			return fmt.Errorf("commit %d pages: %w", len(writes), err)
		}
		return cc.print(snapJSON(snap), fmt.Sprintf("committed %s lsn %d page_count %d", snap.VID, snap.LSN, snap.PageCount))
	})
}

// readChunk is the pages one read asks for (the server caps a ReadPages
// call at 1024 by default).
const readChunk = 256

// parsePageRange reads N (one page) or N-M (pages N to M, inclusive).
func parsePageRange(s string) (first, last uint32, err error) {
	lo, hi, isRange := strings.Cut(s, "-")
	a, err := strconv.ParseUint(lo, 10, 32)
	if err != nil {
		return 0, 0, fmt.Errorf("--pages %q: want N or N-M", s)
	}
	b := a
	if isRange {
		if b, err = strconv.ParseUint(hi, 10, 32); err != nil {
			return 0, 0, fmt.Errorf("--pages %q: want N or N-M", s)
		}
	}
	switch {
	case a == 0:
		return 0, 0, fmt.Errorf("--pages %q: pages start at 1", s)
	case b < a:
		return 0, 0, fmt.Errorf("--pages %q: the range ends before it starts", s)
	}
	return uint32(a), uint32(b), nil
}

func volumeRead(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if usesDir(args) {
		return replicaRead(ctx, args, stdout, stderr)
	}
	cc := newClientCmd("volume read", "volume read VID --page N|--pages N-M [--lsn L] [--object-store URL] > pages.bin\n       graft volume read VID --dir DIR --page N|--pages N-M (through a local replica; see graft volume read --dir x --help)", true, stdout, stderr)
	fs := cc.fs
	idx := fs.Uint("page", 0, "page index to read")
	rng := fs.String("pages", "", "pages to read, N-M inclusive: their raw bytes, 4096 per page, in order (pages never written, or past the page count, read as zeros)")
	lsn := fs.Uint64("lsn", 0, "snapshot LSN to read at (default: the head; with --object-store, the newest flushed snapshot)")
	store := fs.String("object-store", "", "read a flushed snapshot straight from this object store (s3://bucket/prefix?endpoint=..., file:///dir), no cluster needed")
	vid, err := cc.parseVID(args)
	if err != nil {
		return err
	}
	var first, last uint32
	switch {
	case *rng != "" && *idx != 0:
		return errors.New("give --page or --pages, not both")
	case *rng != "":
		if first, last, err = parsePageRange(*rng); err != nil {
			return err
		}
	case *idx == 0 || *idx > math.MaxUint32:
		return fmt.Errorf("--page (or --pages) is required; a page index is in [1, %d]", uint32(math.MaxUint32))
	default:
		first, last = uint32(*idx), uint32(*idx)
	}
	ro, err := cc.readOptions()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cc.timeout)
	defer cancel()
	var read func(ctx context.Context, lsn volume.LSN, idxs []volume.PageIdx) (volume.Snapshot, []client.Page, error)
	if *store != "" {
		r, closeStore, err := openStoreReader(ctx, *store)
		if err != nil {
			return err
		}
		defer closeStore()
		read = func(ctx context.Context, lsn volume.LSN, idxs []volume.PageIdx) (volume.Snapshot, []client.Page, error) {
			return readFromStore(ctx, r, vid, lsn, idxs)
		}
	} else {
		c, err := cc.client()
		if err != nil {
			return err
		}
		read = func(ctx context.Context, lsn volume.LSN, idxs []volume.PageIdx) (volume.Snapshot, []client.Page, error) {
			return readFromCluster(ctx, c, ro, vid, lsn, idxs)
		}
	}
	// Read in chunks, every chunk at the snapshot the first one found, and
	// stream the raw pages unless --json collects them.
	type pageJSON struct {
		Idx  uint32 `json:"idx"`
		LSN  uint64 `json:"lsn"`
		Data []byte `json:"data"`
	}
	var snap volume.Snapshot
	var all []pageJSON
	at := volume.LSN(*lsn)
	for lo := uint64(first); lo <= uint64(last); lo += readChunk {
		hi := min(lo+readChunk-1, uint64(last))
		idxs := make([]volume.PageIdx, 0, hi-lo+1)
		for i := lo; i <= hi; i++ {
			idxs = append(idxs, volume.PageIdx(i))
		}
		s, pages, err := read(ctx, at, idxs)
		if err != nil {
			return err
		}
		if len(pages) != len(idxs) {
			return fmt.Errorf("read pages %d-%d: got %d pages, want %d", lo, hi, len(pages), len(idxs))
		}
		snap, at = s, s.LSN
		for i, p := range pages {
			if p.Idx != idxs[i] || len(p.Data) != volume.PageSize {
				return fmt.Errorf("read pages %d-%d: got page %d (%d bytes) in place of page %d", lo, hi, p.Idx, len(p.Data), idxs[i])
			}
			if cc.json {
				all = append(all, pageJSON{Idx: uint32(p.Idx), LSN: uint64(p.LSN), Data: p.Data})
			} else if _, err := stdout.Write(p.Data); err != nil {
				return err
			}
		}
	}
	if !cc.json {
		return nil
	}
	if *rng == "" {
		p := all[0]
		return printResult(stdout, true, map[string]any{
			"snapshot": snapJSON(snap), "idx": p.Idx, "lsn": p.LSN, "data": p.Data,
		}, "")
	}
	return printResult(stdout, true, map[string]any{"snapshot": snapJSON(snap), "pages": all}, "")
}

func readFromCluster(ctx context.Context, c *client.Client, ro client.ReadOptions, vid volume.ID, lsn volume.LSN, idxs []volume.PageIdx) (volume.Snapshot, []client.Page, error) {
	return c.ReadPages(ctx, vid, lsn, idxs, ro)
}

// openStoreReader opens a reader of flushed snapshots in the bucket alone.
func openStoreReader(ctx context.Context, url string) (*flusher.Reader, func(), error) {
	store, err := objstore.Open(ctx, url)
	if err != nil {
		return nil, nil, err
	}
	r, err := flusher.NewReader(store, flusher.DefaultReaderConfig())
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	return r, func() { store.Close() }, nil
}

// readFromStore reads pages of a flushed snapshot from the bucket.
func readFromStore(ctx context.Context, r *flusher.Reader, vid volume.ID, lsn volume.LSN, idxs []volume.PageIdx) (volume.Snapshot, []client.Page, error) {
	snap, pages, err := r.ReadSnapshot(ctx, vid, lsn, idxs)
	if err != nil {
		return volume.Snapshot{}, nil, err
	}
	out := make([]client.Page, len(pages))
	for i, p := range pages {
		data := p.Data
		if data == nil {
			data = volume.ZeroPage()
		}
		out[i] = client.Page{Idx: idxs[i], LSN: p.LSN, Data: data}
	}
	return snap, out, nil
}

func volumePull(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if usesDir(args) {
		return replicaPull(ctx, args, stdout, stderr)
	}
	cc := newClientCmd("volume pull", "volume pull VID [--since L] [--until L]\n       graft volume pull VID --dir DIR (fast-forward a local replica)", true, stdout, stderr)
	fs := cc.fs
	since := fs.Uint64("since", 0, "exclusive start LSN")
	until := fs.Uint64("until", 0, "inclusive end LSN (default: the head)")
	vid, ro, err := cc.parseRead(args)
	if err != nil {
		return err
	}
	return cc.call(ctx, func(ctx context.Context, c *client.Client) error {
		snap, set, err := c.PullGraft(ctx, vid, volume.LSN(*since), volume.LSN(*until), ro)
		if err != nil {
			return err
		}
		changed := []uint32{}
		for _, p := range set.Slice() {
			changed = append(changed, uint32(p))
		}
		human := fmt.Sprintf("%s (%d, %d]: %d pages changed %v", vid, *since, snap.LSN, len(changed), changed)
		return cc.print(map[string]any{"snapshot": snapJSON(snap), "since_lsn": *since, "changed": changed}, human)
	})
}

func volumeInfo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cc := newClientCmd("volume info", "volume info VID [--lsn L] [--object-store URL]", true, stdout, stderr)
	fs := cc.fs
	lsn := fs.Uint64("lsn", 0, "snapshot LSN (default: the head)")
	storeURL := fs.String("object-store", "", "show what the bucket at this URL holds of the volume instead (checkpoints, log records, segments, bytes, oldest readable LSN), with no cluster")
	vid, err := cc.parseVID(args)
	if err != nil {
		return err
	}
	if *storeURL != "" {
		return volumeInventory(ctx, *storeURL, vid, cc.clientFlags, stdout)
	}
	ro, err := cc.readOptions()
	if err != nil {
		return err
	}
	return cc.call(ctx, func(ctx context.Context, c *client.Client) error {
		snap, err := c.Snapshot(ctx, vid, volume.LSN(*lsn), ro)
		if err != nil {
			return err
		}
		human := fmt.Sprintf("volume %s\n  lsn        %d\n  page_count %d\n  created    %s", snap.VID, snap.LSN, snap.PageCount, vid.Time().UTC().Format(time.RFC3339))
		return cc.print(snapJSON(snap), human)
	})
}

func volumeDelete(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cc := newClientCmd("volume delete", "volume delete VID", false, stdout, stderr)
	vid, err := cc.parseVID(args)
	if err != nil {
		return err
	}
	return cc.call(ctx, func(ctx context.Context, c *client.Client) error {
		if err := c.DeleteVolume(ctx, vid); err != nil {
			return err
		}
		return cc.print(map[string]string{"deleted": vid.String()},
			"deleted volume "+vid.String()+"; its commits and reads answer not_found, and GC removes its objects after the grace period")
	})
}

// volumeInventory prints what the bucket holds of vid.
func volumeInventory(ctx context.Context, url string, vid volume.ID, cf clientFlags, stdout io.Writer) error {
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	r, closeStore, err := openStoreReader(ctx, url)
	if err != nil {
		return err
	}
	defer closeStore()
	inv, err := r.Inventory(ctx, vid)
	if err != nil {
		return err
	}
	out := map[string]any{
		"vid": vid.String(), "flushed_lsn": uint64(inv.Flushed), "oldest_readable_lsn": uint64(inv.OldestReadable),
		"checkpoints": inv.Checkpoints, "checkpoint_bytes": inv.CheckpointBytes, "checkpoint_generations": inv.Generations,
		"newest_checkpoint_lsn": uint64(inv.NewestCheckpoint), "oldest_checkpoint_lsn": uint64(inv.OldestCheckpoint),
		"records": inv.Records, "record_bytes": inv.RecordBytes, "first_record_lsn": uint64(inv.FirstFrom),
		"segments": inv.Segments, "segment_bytes": inv.SegmentBytes, "other_keys": inv.Other,
		"deltas": inv.Deltas, "delta_bytes": inv.DeltaBytes, "newest_delta_lsn": uint64(inv.NewestDelta),
		"unrecorded_segments": inv.Unrecorded, "unrecorded_segment_bytes": inv.UnrecordedBytes,
	}
	human := fmt.Sprintf("volume %s in %s\n  flushed lsn          %d\n  oldest readable lsn  %d\n  checkpoints          %d (%d bytes), lsn %d .. %d\n  log records          %d (%d bytes), first from lsn %d\n  segments             %d (%d bytes), %d (%d bytes) named by no log record (compacted, or kept by GC for live pages)",
		vid, url, inv.Flushed, inv.OldestReadable, inv.Checkpoints, inv.CheckpointBytes, inv.OldestCheckpoint, inv.NewestCheckpoint,
		inv.Records, inv.RecordBytes, inv.FirstFrom, inv.Segments, inv.SegmentBytes, inv.Unrecorded, inv.UnrecordedBytes)
	human += fmt.Sprintf("\n  deltas               %d (%d bytes), newest lsn %d", inv.Deltas, inv.DeltaBytes, inv.NewestDelta)
	if inv.Generations > 0 {
		human += fmt.Sprintf("\n  rewritten            %d more checkpoint generations (compaction; GC sweeps the superseded ones)", inv.Generations)
	}
	if inv.Other > 0 {
		human += fmt.Sprintf("\n  other keys           %d (not in the layout)", inv.Other)
	}
	return printResult(stdout, cf.json, out, human)
}

func volumeLog(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cc := newClientCmd("volume log", "volume log VID [--since L] [--until L] [--limit N]", true, stdout, stderr)
	fs := cc.fs
	since := fs.Uint64("since", 0, "exclusive start LSN")
	until := fs.Uint64("until", 0, "inclusive end LSN (default: the head)")
	limit := fs.Int("limit", 100, "commits to list at most")
	vid, ro, err := cc.parseRead(args)
	if err != nil {
		return err
	}
	return cc.call(ctx, func(ctx context.Context, c *client.Client) error {
		snap, commits, more, err := c.PullCommits(ctx, vid, volume.LSN(*since), volume.LSN(*until), *limit, ro)
		if err != nil {
			return err
		}
		return printLog(stdout, cc.json, snap, commits, more)
	})
}

// printLog prints a page of volume log.
func printLog(stdout io.Writer, asJSON bool, snap volume.Snapshot, commits []client.CommitInfo, more bool) error {
	type commitJSON struct {
		LSN        uint64   `json:"lsn"`
		PageCount  uint32   `json:"page_count"`
		Hash       string   `json:"hash"`
		CommitTime string   `json:"commit_time"`
		Pages      []uint32 `json:"pages"`
	}
	out := []commitJSON{}
	var b strings.Builder
	for _, ci := range commits {
		cj := commitJSON{LSN: uint64(ci.LSN), PageCount: ci.PageCount, Hash: ci.Hash.String(), CommitTime: ci.CommitTime.UTC().Format(time.RFC3339Nano), Pages: []uint32{}}
		for _, p := range ci.Graft.Slice() {
			cj.Pages = append(cj.Pages, uint32(p))
		}
		out = append(out, cj)
		fmt.Fprintf(&b, "lsn %-6d %s  pages %-4d page_count %-6d %s\n", ci.LSN, cj.CommitTime, ci.Graft.Len(), ci.PageCount, cj.Hash[:16])
	}
	if more {
		fmt.Fprintf(&b, "(more; continue with --since %d)\n", commits[len(commits)-1].LSN)
	}
	fmt.Fprintf(&b, "head: lsn %d", snap.LSN)
	return printResult(stdout, asJSON, map[string]any{"snapshot": snapJSON(snap), "commits": out, "more": more}, b.String())
}

var randReader = cryptorand.Reader
