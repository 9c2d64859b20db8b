package jepsen

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/graft-cluster/graft/jepsen/checker"
	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// putRange writes one flush of vid: commits [from, to], each writing page
// 1, with a segment unless noSegment (the record then names a segment
// that was never uploaded).
func putRange(t *testing.T, st objstore.Store, vid volume.ID, from, to volume.LSN, noSegment bool) []checker.Entry {
	t.Helper()
	ctx := context.Background()
	sid, err := segment.NewID(time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rec := segment.Record{VID: vid, From: from, To: to, Segment: sid}
	b := segment.NewBuilder(vid)
	var want []checker.Entry
	for lsn := from; lsn <= to; lsn++ {
		pages := []volume.PageWrite{{Idx: 1, Data: make([]byte, volume.PageSize)}}
		h := volume.CommitHash(vid, lsn, 4, pages)
		c := segment.RecordCommit{LSN: lsn, PageCount: 4, Hash: h}
		c.Graft.Add(1)
		rec.Commits = append(rec.Commits, c)
		if err := b.AddCommit(lsn, pages); err != nil {
			t.Fatal(err)
		}
		want = append(want, checker.Entry{LSN: uint64(lsn), Hash: h.String()})
	}
	if !noSegment {
		data, err := b.Encode()
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Put(ctx, segment.SegmentKey(vid, sid), data); err != nil {
			t.Fatal(err)
		}
	}
	data, err := rec.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put(ctx, segment.LogKey(vid, from), data); err != nil {
		t.Fatal(err)
	}
	return want
}

func TestReadBucket(t *testing.T) {
	url := "file://" + t.TempDir()
	st, err := objstore.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	whole, gap, lost := volume.MustNewID(), volume.MustNewID(), volume.MustNewID()
	chains := map[string][]checker.Entry{}
	add := func(vid volume.ID, from, to volume.LSN, noSegment, inChain bool) {
		e := putRange(t, st, vid, from, to, noSegment)
		if !inChain {
			// The flush trimmed these commits without writing them.
			if err := st.Delete(t.Context(), segment.LogKey(vid, from)); err != nil {
				t.Fatal(err)
			}
		}
		chains[vid.String()] = append(chains[vid.String()], e...)
	}
	add(whole, 1, 3, false, true)
	add(whole, 4, 4, false, true)
	add(gap, 1, 2, false, true)
	add(gap, 3, 5, false, false) // record never written
	add(gap, 6, 7, false, true)
	add(lost, 1, 2, true, true) // segment never uploaded

	got, err := readBucket(t.Context(), url, []volume.ID{whole, gap, lost}, false)
	if err != nil {
		t.Fatalf("readBucket: %v", err)
	}
	if n := len(got.chains[whole.String()]); n != 4 {
		t.Errorf("whole volume: %d commits read, want 4", n)
	}
	if n := len(got.chains[gap.String()]); n != 4 {
		t.Errorf("volume with a gap: %d commits read, want 4 (the records on both sides)", n)
	}
	if len(got.missing) != 1 || !strings.Contains(got.missing[0], "not in the bucket") || !strings.Contains(got.missing[0], lost.String()) {
		t.Errorf("missing = %q, want one lost segment of %s", got.missing, lost)
	}
	res := withAnomalies(checker.Bucket(chains, got.chains, true), got.missing)
	if res.Valid != checker.Invalid {
		t.Fatalf("bucket verdict %s, want false", res.Valid)
	}
	text := strings.Join(res.Anomalies, "\n")
	for _, want := range []string{"vid " + gap.String() + ": bucket log is not a gap-free prefix", lost.String()} {
		if !strings.Contains(text, want) {
			t.Errorf("anomalies lack %q:\n%s", want, text)
		}
	}
	if strings.Contains(text, whole.String()) {
		t.Errorf("anomalies name the whole volume:\n%s", text)
	}
}

func TestBucketGaps(t *testing.T) {
	got := bucketGaps(map[string][]checker.Entry{
		"a": {{LSN: 1}, {LSN: 2}, {LSN: 3}},
		"b": {{LSN: 1}, {LSN: 4}},
		"c": {{LSN: 2}},
	}, nil)
	if len(got) != 2 || !strings.Contains(got[0], "vid b: ") || !strings.Contains(got[1], "vid c: ") {
		t.Errorf("bucketGaps = %q, want gaps in b and c", got)
	}
	// With retention c's log continues its checkpoint at 1; d's at 4 is
	// gap-free from 5; e's misses 5.
	got = bucketGaps(map[string][]checker.Entry{
		"c": {{LSN: 2}},
		"d": {{LSN: 5}, {LSN: 6}},
		"e": {{LSN: 6}},
	}, map[string]uint64{"c": 2, "d": 5, "e": 5})
	if len(got) != 1 || !strings.Contains(got[0], "vid e: ") {
		t.Errorf("bucketGaps with starts = %q, want a gap in e only", got)
	}
}

// putCheckpoint writes vid's checkpoint at lsn (its last record starting
// at lastFrom) naming the first page version of segment sid, where it is.
func putCheckpoint(t *testing.T, st objstore.Store, vid volume.ID, lsn, lastFrom volume.LSN, sid segment.ID) {
	t.Helper()
	b, err := st.Get(t.Context(), segment.SegmentKey(vid, sid))
	if err != nil {
		t.Fatal(err)
	}
	_, ix, err := segment.Decode(b)
	if err != nil {
		t.Fatal(err)
	}
	e := ix.Entries()[0]
	c := segment.RecordCommit{LSN: lsn, PageCount: 4}
	c.Graft.Add(1)
	ck := segment.Checkpoint{
		VID: vid, LSN: lsn, LastFrom: lastFrom, Commit: c, Segments: []segment.ID{sid},
		Pages: []segment.CheckpointPage{{Idx: e.Idx, LSN: e.LSN, Segment: 0, Pos: 0, CRC: e.CRC}},
	}
	data, err := ck.AppendBinary(nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Put(t.Context(), segment.CheckpointKey(vid, lsn), data); err != nil {
		t.Fatal(err)
	}
}

// With retention a volume's log may start past a checkpoint (GC deleted
// the records before it): readBucket then checks the checkpoint and the
// segments it names, and reports a record's segment GC deleted too early
// (graft_bug_gc_extra_segment) once it stays missing.
func TestReadBucket_Retention(t *testing.T) {
	saved := gcReread
	gcReread.n, gcReread.wait = 2, time.Millisecond
	t.Cleanup(func() { gcReread = saved })
	url := "file://" + t.TempDir()
	st, err := objstore.Open(t.Context(), url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	segOf := func(vid volume.ID, from volume.LSN) segment.ID {
		r, err := st.Get(t.Context(), segment.LogKey(vid, from))
		if err != nil {
			t.Fatal(err)
		}
		rec, err := segment.DecodeRecord(r)
		if err != nil {
			t.Fatal(err)
		}
		return rec.Segment
	}
	// gc'd: records 1..3 folded into checkpoint 3 and deleted, 4..5 kept.
	// extra: the same, and the segment of record 4 deleted too.
	// noBase: the log starts at 4 with no checkpoint at 3.
	gcd, extra, noBase := volume.MustNewID(), volume.MustNewID(), volume.MustNewID()
	for _, vid := range []volume.ID{gcd, extra, noBase} {
		putRange(t, st, vid, 1, 3, false)
		putRange(t, st, vid, 4, 5, false)
		if vid != noBase {
			putCheckpoint(t, st, vid, 3, 1, segOf(vid, 1))
		}
		if err := st.Delete(t.Context(), segment.LogKey(vid, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Delete(t.Context(), segment.SegmentKey(extra, segOf(extra, 4))); err != nil {
		t.Fatal(err)
	}

	got, err := readBucket(t.Context(), url, []volume.ID{gcd, extra, noBase}, true)
	if err != nil {
		t.Fatalf("readBucket: %v", err)
	}
	for _, vid := range []volume.ID{gcd, extra, noBase} {
		if s := got.starts[vid.String()]; s != 4 {
			t.Errorf("%s: start %d, want 4", vid, s)
		}
		if n := len(got.chains[vid.String()]); n != 2 {
			t.Errorf("%s: %d commits read, want 2", vid, n)
		}
	}
	text := strings.Join(got.missing, "\n")
	if len(got.missing) != 2 || !strings.Contains(text, extra.String()+": log record [4, 5] names segment") ||
		!strings.Contains(text, noBase.String()+": the log starts at lsn 4 and the checkpoint at 3 is not usable") {
		t.Fatalf("missing = %q, want record 4's segment of %s and the checkpoint of %s", got.missing, extra, noBase)
	}
	if strings.Contains(text, gcd.String()) {
		t.Errorf("missing names the volume GC left whole:\n%s", text)
	}
}
