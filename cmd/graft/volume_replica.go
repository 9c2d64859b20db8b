package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/volume"
)

// The --dir commands work through a local replica (client.Open with Dir):
// pull moves grafts (pages become pending, no data), read fetches only
// pending pages (plus prefetch), write commits locally, push sends the
// local commits, reset drops them, status shows the replica.

// replicaFlags are the flags of every --dir command.
type replicaFlags struct {
	dir       string
	endpoints string
	ca        string
	token     string
	json      bool
	timeout   time.Duration
}

func (r *replicaFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&r.dir, "dir", "", "the local replica's directory (created on first use; one process at a time)")
	fs.StringVar(&r.endpoints, "endpoint", defaultEndpoint("http://127.0.0.1:7001"), "cluster or edge endpoint(s), comma-separated; $"+EndpointEnv+" sets the default")
	fs.StringVar(&r.ca, "ca", "", "PEM CA bundle to verify https:// endpoints with (default: the system roots)")
	fs.StringVar(&r.token, "token", "", "bearer token (graft token issue); default $"+TokenEnv)
	fs.BoolVar(&r.json, "json", false, "print JSON")
	fs.DurationVar(&r.timeout, "timeout", 30*time.Second, "overall timeout")
}

// usesDir reports whether args hold --dir, so read and pull go through a
// local replica.
func usesDir(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if strings.HasPrefix(a, "-") && name == "dir" {
			return true
		}
	}
	return false
}

// openReplica opens the replica runtime in --dir and the volume vid in it.
func openReplica(ctx context.Context, rf *replicaFlags, vid volume.ID) (*client.Runtime, *client.Volume, error) {
	var eps []string
	for _, e := range strings.Split(rf.endpoints, ",") {
		if e = strings.TrimSpace(e); e != "" {
			eps = append(eps, e)
		}
	}
	opts, err := clientSecurity(rf.ca, or(rf.token, os.Getenv(TokenEnv)))
	if err != nil {
		return nil, nil, err
	}
	rt, err := client.Open(ctx, client.Config{Dir: rf.dir, Endpoints: eps, Options: opts})
	if err != nil {
		return nil, nil, err
	}
	v, err := rt.Volume(ctx, vid)
	if err != nil {
		rt.Close()
		return nil, nil, err
	}
	return rt, v, nil
}

// replicaCommand is the shape every --dir command shares: register the
// command's own flags (extra, which returns a check of them), parse, check,
// and only then open the replica, act on the volume and close it.
func replicaCommand(ctx context.Context, name, usage string, args []string, stdout, stderr io.Writer,
	extra func(fs *flag.FlagSet) func() error, act func(ctx context.Context, rf *replicaFlags, v *client.Volume) error) error {
	fs := newFlags("volume "+name, usage, stderr)
	var rf replicaFlags
	rf.register(fs)
	check := func() error { return nil }
	if extra != nil {
		check = extra(fs)
	}
	if helpRequested(args) {
		return parseFlags(fs, args, stdout)
	}
	vid, err := parseWithVID(fs, args)
	if err != nil {
		return err
	}
	if rf.dir == "" {
		return errors.New("--dir is required: the local replica's directory")
	}
	if err := check(); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, rf.timeout)
	defer cancel()
	rt, v, err := openReplica(ctx, &rf, vid)
	if err != nil {
		return err
	}
	err = act(ctx, &rf, v)
	if cerr := rt.Close(); cerr != nil && err == nil {
		err = fmt.Errorf("close replica: %w", cerr)
	}
	return err
}

type localSnapshotJSON struct {
	VID       string `json:"vid"`
	LocalLSN  uint64 `json:"local_lsn"`
	RemoteLSN uint64 `json:"remote_lsn"`
	PageCount uint32 `json:"page_count"`
}

func localSnapJSON(s client.Snapshot) localSnapshotJSON {
	return localSnapshotJSON{VID: s.VID.String(), LocalLSN: uint64(s.LocalLSN), RemoteLSN: uint64(s.RemoteLSN), PageCount: s.PageCount}
}

func replicaPull(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return replicaCommand(ctx, "pull", "volume pull VID --dir DIR: fast-forward the local replica by graft (changed pages become pending; no page data moves)", args, stdout, stderr, nil,
		func(ctx context.Context, rf *replicaFlags, v *client.Volume) error {
			before := v.Snapshot()
			if err := v.Pull(ctx); err != nil {
				return err
			}
			s, st := v.Snapshot(), v.Stats()
			human := fmt.Sprintf("pulled %s: remote lsn %d -> %d, local lsn %d, page_count %d, %d pages pending, %d present",
				s.VID, before.RemoteLSN, s.RemoteLSN, s.LocalLSN, s.PageCount, st.Pending, st.Present)
			return printResult(stdout, rf.json, map[string]any{
				"snapshot": localSnapJSON(s), "from_remote_lsn": uint64(before.RemoteLSN), "pending": st.Pending, "present": st.Present,
			}, human)
		})
}

func replicaRead(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var idx uint
	var rng string
	var first, last uint32
	return replicaCommand(ctx, "read", "volume read VID --dir DIR --page N|--pages N-M > pages.bin: read the local snapshot, fetching only pending pages (counters on stderr)", args, stdout, stderr,
		func(fs *flag.FlagSet) func() error {
			fs.UintVar(&idx, "page", 0, "page index to read")
			fs.StringVar(&rng, "pages", "", "pages to read, N-M inclusive: raw bytes, 4096 per page, in order")
			return func() error {
				var err error
				switch {
				case rng != "" && idx != 0:
					return errors.New("give --page or --pages, not both")
				case rng != "":
					first, last, err = parsePageRange(rng)
					return err
				case idx == 0 || idx > math.MaxUint32:
					return fmt.Errorf("--page (or --pages) is required; a page index is in [1, %d]", uint32(math.MaxUint32))
				}
				first, last = uint32(idx), uint32(idx)
				return nil
			}
		},
		func(ctx context.Context, rf *replicaFlags, v *client.Volume) error {
			type pageJSON struct {
				Idx  uint32 `json:"idx"`
				Data []byte `json:"data"`
			}
			before := v.Stats()
			r := v.Reader()
			var all []pageJSON
			var readErr error
			for i := uint64(first); i <= uint64(last) && readErr == nil; i++ {
				var p []byte
				if p, readErr = r.ReadPage(ctx, volume.PageIdx(i)); readErr != nil {
					break
				}
				if rf.json {
					all = append(all, pageJSON{Idx: uint32(i), Data: p})
				} else {
					_, readErr = stdout.Write(p)
				}
			}
			// The fetches made count even when a later read failed.
			st := v.Stats()
			delta := fetchCounters{
				Reads: st.Reads - before.Reads, Misses: st.Misses - before.Misses, RoundTrips: st.RoundTrips - before.RoundTrips,
				Fetched: st.Fetched - before.Fetched, Prefetched: st.Prefetched - before.Prefetched, PrefetchHits: st.PrefetchHits - before.PrefetchHits,
			}
			if err := addFetchCounters(rf.dir, v.VID(), delta); err != nil {
				return errors.Join(readErr, err)
			}
			if readErr != nil {
				return readErr
			}
			if rf.json {
				return printResult(stdout, true, map[string]any{"snapshot": localSnapJSON(r.Snapshot()), "pages": all, "fetch": delta, "pending": st.Pending}, "")
			}
			_, err := fmt.Fprintf(stderr, "read %d pages: %d fetched in %d round trips (%d prefetched), %d pages still pending\n",
				delta.Reads, delta.Fetched, delta.RoundTrips, delta.Prefetched, st.Pending)
			return err
		})
}

func replicaWrite(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	var pages pageFlags
	var file string
	var at uint64
	var pageCount int64
	var writes []volume.PageWrite
	return replicaCommand(ctx, "write", "volume write VID --dir DIR [--page IDX=@FILE|IDX=TEXT]... [--file FILE --at IDX] [--page-count N]: commit locally (push sends it)", args, stdout, stderr,
		func(fs *flag.FlagSet) func() error {
			fs.Var(&pages, "page", "a page to write: IDX=@FILE or IDX=TEXT, at most 4096 bytes, zero-padded to 4096 (repeatable)")
			fs.StringVar(&file, "file", "", "a file of any size to write across consecutive pages from --at, the last one zero-padded (- reads stdin)")
			fs.Uint64Var(&at, "at", 1, "with --file: the page the file starts at")
			fs.Int64Var(&pageCount, "page-count", -1, "the volume's size in pages after the commit (default: max of the local snapshot's and the highest page written)")
			return func() error {
				var fileWrites []volume.PageWrite
				if file != "" {
					data, err := readFileArg(file, os.Stdin)
					if err != nil {
						return fmt.Errorf("--file: %w", err)
					}
					if fileWrites, err = filePages(file, data, at); err != nil {
						return err
					}
				}
				var err error
				if writes, err = commitPages(pages, file, fileWrites); err != nil {
					return err
				}
				if len(writes) == 0 && pageCount < 0 {
					return errors.New("nothing to write: give --page, --file or --page-count")
				}
				return nil
			}
		},
		func(ctx context.Context, rf *replicaFlags, v *client.Volume) error {
			w := v.Writer()
			pc := w.PageCount()
			for _, pw := range writes {
				pc = max(pc, uint32(pw.Idx))
				if err := w.WritePage(pw.Idx, pw.Data); err != nil {
					return err
				}
			}
			if pageCount >= 0 {
				pc = uint32(min(pageCount, math.MaxUint32))
			}
			w.SetPageCount(pc)
			s, err := w.Commit(ctx)
			if err != nil {
				return err
			}
			human := fmt.Sprintf("committed locally %s local lsn %d page_count %d (%d pages; not pushed yet)", s.VID, s.LocalLSN, s.PageCount, len(writes))
			return printResult(stdout, rf.json, map[string]any{"snapshot": localSnapJSON(s), "pages": len(writes)}, human)
		})
}

func replicaPush(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return replicaCommand(ctx, "push", "volume push VID --dir DIR: send the local commits as one remote commit", args, stdout, stderr, nil,
		func(ctx context.Context, rf *replicaFlags, v *client.Volume) error {
			res, err := v.Push(ctx)
			if errors.Is(err, client.ErrRejected) {
				return fmt.Errorf("%w (the local commits are kept; 'graft volume reset --dir' drops them)", err)
			}
			if err != nil {
				return err
			}
			human := fmt.Sprintf("nothing to push: %s local lsn %d remote lsn %d", res.Snapshot.VID, res.Snapshot.LocalLSN, res.Snapshot.RemoteLSN)
			if res.Pushed {
				human = fmt.Sprintf("pushed %s: %d pages as remote lsn %d", res.Snapshot.VID, res.Pages, res.RemoteLSN)
				if res.Resent {
					human += " (resent an interrupted push)"
				}
			}
			return printResult(stdout, rf.json, map[string]any{
				"snapshot": localSnapJSON(res.Snapshot), "pushed": res.Pushed, "resent": res.Resent,
				"remote_lsn": uint64(res.RemoteLSN), "pages": res.Pages, "hash": res.Hash.String(),
			}, human)
		})
}

func replicaReset(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return replicaCommand(ctx, "reset", "volume reset VID --dir DIR: drop the local commits not pushed and adopt the remote head", args, stdout, stderr, nil,
		func(ctx context.Context, rf *replicaFlags, v *client.Volume) error {
			if err := v.Reset(ctx); err != nil {
				return err
			}
			s := v.Snapshot()
			human := fmt.Sprintf("reset %s to remote lsn %d (local lsn %d, page_count %d)", s.VID, s.RemoteLSN, s.LocalLSN, s.PageCount)
			return printResult(stdout, rf.json, map[string]any{"snapshot": localSnapJSON(s), "status": v.Status().String()}, human)
		})
}

func replicaStatus(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return replicaCommand(ctx, "status", "volume status VID --dir DIR [--json]: local vs remote LSN, pending pages, fetch counters", args, stdout, stderr, nil,
		func(ctx context.Context, rf *replicaFlags, v *client.Volume) error {
			s, st := v.Snapshot(), v.Stats()
			totals, err := loadFetchCounters(rf.dir)
			if err != nil {
				return err
			}
			fc := totals[s.VID.String()]
			// The cluster's head, when reachable within a few seconds; the
			// local state is the answer either way.
			headLSN, headErr := remoteHead(ctx, rf.endpoints, s.VID)
			head := map[string]any{"lsn": uint64(headLSN)}
			headText := fmt.Sprintf("%d", headLSN)
			if headErr != nil {
				head = map[string]any{"error": headErr.Error()}
				headText = "unknown (" + headErr.Error() + ")"
			}
			human := fmt.Sprintf("volume %s (replica in %s)\n  status      %s\n  local lsn   %d\n  remote lsn  %d (cluster head: %s)\n  page_count  %d\n  pages       %d present, %d pending\n  fetches     %d reads, %d misses, %d round trips, %d pages fetched, %d prefetched, %d prefetch hits",
				s.VID, rf.dir, v.Status(), s.LocalLSN, s.RemoteLSN, headText, s.PageCount, st.Present, st.Pending,
				fc.Reads, fc.Misses, fc.RoundTrips, fc.Fetched, fc.Prefetched, fc.PrefetchHits)
			return printResult(stdout, rf.json, map[string]any{
				"snapshot": localSnapJSON(s), "status": v.Status().String(), "cluster_head": head,
				"present": st.Present, "pending": st.Pending, "fetch": fc,
			}, human)
		})
}

// remoteHead reads the cluster's head LSN of vid, within 5 seconds.
func remoteHead(ctx context.Context, endpoints string, vid volume.ID) (volume.LSN, error) {
	c, err := client.New(strings.Split(endpoints, ","), client.WithAttempts(2), client.WithAttemptTimeout(2*time.Second))
	if err != nil {
		return 0, err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	snap, err := c.Snapshot(ctx, vid, 0, client.ReadOptions{})
	return snap.LSN, err
}

// fetchCounters are the fetch counters of a replica, summed over the --dir
// commands that read it (a Runtime's client.Stats count one process).
type fetchCounters struct {
	Reads        uint64 `json:"reads"`
	Misses       uint64 `json:"misses"`
	RoundTrips   uint64 `json:"round_trips"`
	Fetched      uint64 `json:"fetched"`
	Prefetched   uint64 `json:"prefetched"`
	PrefetchHits uint64 `json:"prefetch_hits"`
}

// fetchCountersFile holds the fetch counters per volume ID, beside the
// replica's store in --dir.
const fetchCountersFile = "cli-fetch-counters.json"

func loadFetchCounters(dir string) (map[string]fetchCounters, error) {
	out := map[string]fetchCounters{}
	b, err := os.ReadFile(filepath.Join(dir, fetchCountersFile))
	if errors.Is(err, os.ErrNotExist) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Join(dir, fetchCountersFile), err)
	}
	return out, nil
}

// addFetchCounters adds d to vid's counters (write to a temporary file,
// then rename). The store's lock on --dir keeps other processes out.
func addFetchCounters(dir string, vid volume.ID, d fetchCounters) error {
	all, err := loadFetchCounters(dir)
	if err != nil {
		return err
	}
	c := all[vid.String()]
	c.Reads += d.Reads
	c.Misses += d.Misses
	c.RoundTrips += d.RoundTrips
	c.Fetched += d.Fetched
	c.Prefetched += d.Prefetched
	c.PrefetchHits += d.PrefetchHits
	all[vid.String()] = c
	b, err := json.MarshalIndent(all, "", "  ")
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, fetchCountersFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, filepath.Join(dir, fetchCountersFile))
}
