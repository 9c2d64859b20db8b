package main

import (
	"context"
	cryptorand "crypto/rand"
	"encoding/json"
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
		"read":   {"write one page's raw 4096 bytes to stdout", volumeRead},
		"pull":   {"show the pages changed between two LSNs (a graft)", volumePull},
		"info":   {"show a volume's snapshot", volumeInfo},
		"log":    {"list a volume's commits", volumeLog},
	})
}

// clientFlags are the flags every client command shares.
type clientFlags struct {
	endpoints   string
	json        bool
	timeout     time.Duration
	consistency string
	minLSN      uint64
}

func (c *clientFlags) register(fs flagSet, reads bool) {
	fs.StringVar(&c.endpoints, "endpoint", "http://127.0.0.1:7001", "cluster endpoint(s), comma-separated")
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

func (c *clientFlags) client() (*client.Client, error) {
	return client.New(strings.Split(c.endpoints, ","))
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
	var data []byte
	if path, ok := strings.CutPrefix(val, "@"); ok {
		if data, err = os.ReadFile(path); err != nil {
			return volume.PageWrite{}, fmt.Errorf("page %d: %w", idx, err)
		}
	} else {
		data = []byte(val)
	}
	if len(data) > volume.PageSize {
		return volume.PageWrite{}, fmt.Errorf("page %d: %d bytes, more than a page (%d)", idx, len(data), volume.PageSize)
	}
	page := make([]byte, volume.PageSize)
	copy(page, data)
	return volume.PageWrite{Idx: volume.PageIdx(idx), Data: page}, nil
}

func volumeCommit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("volume commit", "volume commit VID --page IDX=@FILE|IDX=TEXT... [--base LSN] [--page-count N]", stderr)
	var cf clientFlags
	cf.register(fs, false)
	var pages pageFlags
	fs.Var(&pages, "page", "a page to write: IDX=@FILE or IDX=TEXT, zero-padded to 4096 bytes (repeatable)")
	base := fs.Int64("base", -1, "base LSN the commit builds on (default: the current head, read linearizably)")
	pageCount := fs.Int64("page-count", -1, "the volume's size in pages after the commit (default: max of the head's and the highest page written)")
	if helpRequested(args) {
		return parseFlags(fs, args, stdout)
	}
	vid, err := parseWithVID(fs, args)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	c, err := cf.client()
	if err != nil {
		return err
	}
	var writes []volume.PageWrite
	var maxIdx uint32
	for _, p := range pages {
		w, err := parsePage(p)
		if err != nil {
			return err
		}
		writes = append(writes, w)
		maxIdx = max(maxIdx, uint32(w.Idx))
	}
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
		return err
	}
	return printResult(stdout, cf.json, snapJSON(snap), fmt.Sprintf("committed %s lsn %d page_count %d", snap.VID, snap.LSN, snap.PageCount))
}

func volumeRead(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("volume read", "volume read VID --page N [--lsn L] [--object-store URL] > page.bin", stderr)
	var cf clientFlags
	cf.register(fs, true)
	idx := fs.Uint("page", 0, "page index to read (required)")
	lsn := fs.Uint64("lsn", 0, "snapshot LSN to read at (default: the head; with --object-store, the newest flushed snapshot)")
	store := fs.String("object-store", "", "read a flushed snapshot straight from this object store (s3://bucket/prefix?endpoint=..., file:///dir), no cluster needed")
	if helpRequested(args) {
		return parseFlags(fs, args, stdout)
	}
	vid, err := parseWithVID(fs, args)
	if err != nil {
		return err
	}
	if *idx == 0 || *idx > math.MaxUint32 {
		return fmt.Errorf("--page is required and must be in [1, %d]", uint32(math.MaxUint32))
	}
	ro, err := cf.readOptions()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	var snap volume.Snapshot
	var page client.Page
	if *store != "" {
		snap, page, err = readFromStore(ctx, *store, vid, volume.LSN(*lsn), volume.PageIdx(*idx))
	} else {
		snap, page, err = readFromCluster(ctx, cf, ro, vid, volume.LSN(*lsn), volume.PageIdx(*idx))
	}
	if err != nil {
		return err
	}
	if cf.json {
		return printResult(stdout, true, map[string]any{
			"snapshot": snapJSON(snap), "idx": page.Idx, "lsn": page.LSN, "data": page.Data,
		}, "")
	}
	_, err = stdout.Write(page.Data)
	return err
}

func readFromCluster(ctx context.Context, cf clientFlags, ro client.ReadOptions, vid volume.ID, lsn volume.LSN, idx volume.PageIdx) (volume.Snapshot, client.Page, error) {
	c, err := cf.client()
	if err != nil {
		return volume.Snapshot{}, client.Page{}, err
	}
	snap, pages, err := c.ReadPages(ctx, vid, lsn, []volume.PageIdx{idx}, ro)
	if err != nil {
		return volume.Snapshot{}, client.Page{}, err
	}
	if len(pages) != 1 {
		return volume.Snapshot{}, client.Page{}, fmt.Errorf("server returned %d pages, want 1", len(pages))
	}
	return snap, pages[0], nil
}

// readFromStore reads a page of a flushed snapshot from the bucket alone.
func readFromStore(ctx context.Context, url string, vid volume.ID, lsn volume.LSN, idx volume.PageIdx) (volume.Snapshot, client.Page, error) {
	store, err := objstore.Open(ctx, url)
	if err != nil {
		return volume.Snapshot{}, client.Page{}, err
	}
	defer store.Close()
	r, err := flusher.NewReader(store, flusher.DefaultReaderConfig())
	if err != nil {
		return volume.Snapshot{}, client.Page{}, err
	}
	snap, pages, err := r.ReadSnapshot(ctx, vid, lsn, []volume.PageIdx{idx})
	if err != nil {
		return volume.Snapshot{}, client.Page{}, err
	}
	data := pages[0].Data
	if data == nil {
		data = volume.ZeroPage()
	}
	return snap, client.Page{Idx: idx, LSN: pages[0].LSN, Data: data}, nil
}

func volumePull(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("volume pull", "volume pull VID [--since L] [--until L]", stderr)
	var cf clientFlags
	cf.register(fs, true)
	since := fs.Uint64("since", 0, "exclusive start LSN")
	until := fs.Uint64("until", 0, "inclusive end LSN (default: the head)")
	if helpRequested(args) {
		return parseFlags(fs, args, stdout)
	}
	vid, err := parseWithVID(fs, args)
	if err != nil {
		return err
	}
	ro, err := cf.readOptions()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	c, err := cf.client()
	if err != nil {
		return err
	}
	snap, set, err := c.PullGraft(ctx, vid, volume.LSN(*since), volume.LSN(*until), ro)
	if err != nil {
		return err
	}
	changed := []uint32{}
	for _, p := range set.Slice() {
		changed = append(changed, uint32(p))
	}
	human := fmt.Sprintf("%s (%d, %d]: %d pages changed %v", vid, *since, snap.LSN, len(changed), changed)
	return printResult(stdout, cf.json, map[string]any{"snapshot": snapJSON(snap), "since_lsn": *since, "changed": changed}, human)
}

func volumeInfo(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("volume info", "volume info VID [--lsn L]", stderr)
	var cf clientFlags
	cf.register(fs, true)
	lsn := fs.Uint64("lsn", 0, "snapshot LSN (default: the head)")
	if helpRequested(args) {
		return parseFlags(fs, args, stdout)
	}
	vid, err := parseWithVID(fs, args)
	if err != nil {
		return err
	}
	ro, err := cf.readOptions()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	c, err := cf.client()
	if err != nil {
		return err
	}
	snap, err := c.Snapshot(ctx, vid, volume.LSN(*lsn), ro)
	if err != nil {
		return err
	}
	human := fmt.Sprintf("volume %s\n  lsn        %d\n  page_count %d\n  created    %s", snap.VID, snap.LSN, snap.PageCount, vid.Time().UTC().Format(time.RFC3339))
	return printResult(stdout, cf.json, snapJSON(snap), human)
}

func volumeLog(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("volume log", "volume log VID [--since L] [--until L] [--limit N]", stderr)
	var cf clientFlags
	cf.register(fs, true)
	since := fs.Uint64("since", 0, "exclusive start LSN")
	until := fs.Uint64("until", 0, "inclusive end LSN (default: the head)")
	limit := fs.Int("limit", 100, "commits to list at most")
	if helpRequested(args) {
		return parseFlags(fs, args, stdout)
	}
	vid, err := parseWithVID(fs, args)
	if err != nil {
		return err
	}
	ro, err := cf.readOptions()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cf.timeout)
	defer cancel()
	c, err := cf.client()
	if err != nil {
		return err
	}
	snap, commits, more, err := c.PullCommits(ctx, vid, volume.LSN(*since), volume.LSN(*until), *limit, ro)
	if err != nil {
		return err
	}
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
	return printResult(stdout, cf.json, map[string]any{"snapshot": snapJSON(snap), "commits": out, "more": more}, b.String())
}

var randReader = cryptorand.Reader
