package edge

import (
	"bufio"
	"bytes"
	"container/list"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/zeebo/blake3"

	"github.com/graft-cluster/graft/volume"
)

// disk is the optional disk tier under Config.CacheDir: page versions as
// files (pages/VID/IDX-VER: the bytes and a BLAKE3 sum of key and bytes),
// and the metadata entries as an append-only log (meta.log, fixed-size
// CRC'd records) replayed into memory at start. Both hold only immutable
// facts, so a restarted edge is warm. Writes are asynchronous (a full
// queue drops them: the disk is a cache); a file that fails its check is
// removed and read as a miss.
type disk struct {
	dir      string
	maxPages int64 // bytes of page files kept
	maxMeta  int64 // bytes of meta.log before it is rewritten
	log      *slog.Logger

	queue  chan diskWrite
	done   chan struct{}
	qmu    sync.RWMutex // guards closed against sends on a closed queue
	closed bool

	mu       sync.Mutex
	lru      *list.List // of pageKey, most recent first
	files    map[pageKey]*list.Element
	used     int64
	metaSize int64
	meta     *os.File
	snapshot func() []metaRecord // the in-memory entries, for a rewrite
}

type diskWrite struct {
	page *pageKey
	data []byte
	meta []metaRecord
}

type metaRecord struct {
	key metaKey
	val uint64
}

const (
	pageFileSize   = volume.PageSize + 32
	metaRecordSize = 16 + 8 + 4 + 8 + 4
)

func openDisk(dir string, maxBytes int64, log *slog.Logger) (*disk, []metaRecord, error) {
	if err := os.MkdirAll(filepath.Join(dir, "pages"), 0o755); err != nil {
		return nil, nil, fmt.Errorf("edge: cache dir: %w", err)
	}
	d := &disk{
		dir: dir, maxMeta: max(maxBytes/16, 1<<20), log: log,
		queue: make(chan diskWrite, 4096), done: make(chan struct{}),
		lru: list.New(), files: map[pageKey]*list.Element{},
	}
	d.maxPages = maxBytes - d.maxMeta
	if err := d.scanPages(); err != nil {
		return nil, nil, err
	}
	recs, err := d.replayMeta()
	if err != nil {
		return nil, nil, err
	}
	return d, recs, nil
}

func (d *disk) pagePath(k pageKey) string {
	return filepath.Join(d.dir, "pages", k.vid.String(), fmt.Sprintf("%d-%d", k.idx, k.ver))
}

// scanPages indexes the page files left by an earlier run (oldest
// modification first, so they are evicted first).
func (d *disk) scanPages() error {
	type found struct {
		k   pageKey
		mod int64
	}
	var all []found
	root := filepath.Join(d.dir, "pages")
	err := filepath.WalkDir(root, func(path string, de fs.DirEntry, err error) error {
		if err != nil || de.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		vs, name, ok := strings.Cut(rel, string(filepath.Separator))
		is, vers, ok2 := strings.Cut(name, "-")
		vid, err1 := volume.ParseID(vs)
		idx, err2 := strconv.ParseUint(is, 10, 32)
		ver, err3 := strconv.ParseUint(vers, 10, 64)
		if !ok || !ok2 || err1 != nil || err2 != nil || err3 != nil {
			_ = os.Remove(path) // a temp file of a write cut short, or junk
			return nil
		}
		info, err := de.Info()
		if err != nil {
			return nil
		}
		all = append(all, found{pageKey{vid: vid, idx: volume.PageIdx(idx), ver: volume.LSN(ver)}, info.ModTime().UnixNano()})
		return nil
	})
	if err != nil {
		return fmt.Errorf("edge: scan cache dir: %w", err)
	}
	// Newest first, so the oldest end up at the back of the LRU.
	sort.Slice(all, func(i, j int) bool { return all[i].mod > all[j].mod })
	for _, f := range all {
		d.files[f.k] = d.lru.PushBack(f.k)
		d.used += pageFileSize
	}
	return nil
}

// replayMeta reads meta.log, stopping at the first torn or corrupt record.
func (d *disk) replayMeta() ([]metaRecord, error) {
	path := filepath.Join(d.dir, "meta.log")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("edge: cache dir: %w", err)
	}
	var recs []metaRecord
	r := bufio.NewReader(f)
	buf := make([]byte, metaRecordSize)
	var good int64
	for {
		if _, err := io.ReadFull(r, buf); err != nil {
			break
		}
		rec, ok := decodeMeta(buf)
		if !ok {
			break
		}
		recs = append(recs, rec)
		good += metaRecordSize
	}
	if err := f.Truncate(good); err != nil {
		f.Close()
		return nil, fmt.Errorf("edge: cache dir: %w", err)
	}
	if _, err := f.Seek(good, io.SeekStart); err != nil {
		f.Close()
		return nil, fmt.Errorf("edge: cache dir: %w", err)
	}
	d.meta, d.metaSize = f, good
	return recs, nil
}

func encodeMeta(b []byte, r metaRecord) []byte {
	b = append(b, r.key.vid[:]...)
	b = binary.LittleEndian.AppendUint64(b, uint64(r.key.lsn))
	b = binary.LittleEndian.AppendUint32(b, uint32(r.key.idx))
	b = binary.LittleEndian.AppendUint64(b, r.val)
	return binary.LittleEndian.AppendUint32(b, crc32.Checksum(b[len(b)-36:], crc32.MakeTable(crc32.Castagnoli)))
}

func decodeMeta(b []byte) (metaRecord, bool) {
	if crc32.Checksum(b[:36], crc32.MakeTable(crc32.Castagnoli)) != binary.LittleEndian.Uint32(b[36:]) {
		return metaRecord{}, false
	}
	var r metaRecord
	copy(r.key.vid[:], b[:16])
	r.key.lsn = volume.LSN(binary.LittleEndian.Uint64(b[16:]))
	r.key.idx = volume.PageIdx(binary.LittleEndian.Uint32(b[24:]))
	r.val = binary.LittleEndian.Uint64(b[28:])
	return r, r.key.lsn != 0
}

func pageSum(k pageKey, data []byte) []byte {
	h := blake3.New()
	h.Write(k.vid[:])
	var b [12]byte
	binary.LittleEndian.PutUint32(b[:4], uint32(k.idx))
	binary.LittleEndian.PutUint64(b[4:], uint64(k.ver))
	h.Write(b[:])
	h.Write(data)
	return h.Sum(nil)
}

// getPage returns a page version's bytes from disk, verified.
func (d *disk) getPage(k pageKey) ([]byte, bool) {
	d.mu.Lock()
	el, ok := d.files[k]
	if ok {
		d.lru.MoveToFront(el)
	}
	d.mu.Unlock()
	if !ok {
		return nil, false
	}
	b, err := os.ReadFile(d.pagePath(k))
	if err == nil && len(b) == pageFileSize && bytes.Equal(b[volume.PageSize:], pageSum(k, b[:volume.PageSize])) {
		return b[:volume.PageSize:volume.PageSize], true
	}
	d.log.Warn("disk cache: page file unreadable or corrupt; dropped", "file", d.pagePath(k), "err", err)
	d.mu.Lock()
	if el, ok := d.files[k]; ok {
		d.lru.Remove(el)
		delete(d.files, k)
		d.used -= pageFileSize
	}
	d.mu.Unlock()
	_ = os.Remove(d.pagePath(k))
	return nil, false
}

// enqueue queues a write; a full queue drops it.
func (d *disk) enqueue(w diskWrite) {
	d.qmu.RLock()
	defer d.qmu.RUnlock()
	if d.closed {
		return
	}
	select {
	case d.queue <- w:
	default:
	}
}

// run writes queued entries until the queue is closed.
func (d *disk) run() {
	defer close(d.done)
	var buf []byte
	for w := range d.queue {
		if w.page != nil {
			if err := d.writePage(*w.page, w.data); err != nil {
				d.log.Warn("disk cache: write page", "err", err)
			}
		}
		if len(w.meta) > 0 {
			buf = buf[:0]
			for _, r := range w.meta {
				buf = encodeMeta(buf, r)
			}
			if err := d.appendMeta(buf); err != nil {
				d.log.Warn("disk cache: append meta", "err", err)
			}
		}
	}
}

func (d *disk) writePage(k pageKey, data []byte) error {
	d.mu.Lock()
	_, have := d.files[k]
	d.mu.Unlock()
	if have {
		return nil
	}
	path := d.pagePath(k)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	tmp := path + ".tmp"
	b := append(append(make([]byte, 0, pageFileSize), data...), pageSum(k, data)...)
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.files[k] = d.lru.PushFront(k)
	d.used += pageFileSize
	for d.used > d.maxPages && d.lru.Len() > 0 {
		old := d.lru.Remove(d.lru.Back()).(pageKey)
		delete(d.files, old)
		d.used -= pageFileSize
		_ = os.Remove(d.pagePath(old))
	}
	return nil
}

func (d *disk) appendMeta(b []byte) error {
	if d.metaSize+int64(len(b)) > d.maxMeta && d.snapshot != nil {
		if err := d.rewriteMeta(); err != nil {
			return err
		}
	}
	n, err := d.meta.Write(b)
	d.metaSize += int64(n)
	return err
}

// rewriteMeta replaces meta.log with the entries in memory now.
func (d *disk) rewriteMeta() error {
	recs := d.snapshot()
	var buf []byte
	for _, r := range recs {
		if int64(len(buf)+metaRecordSize) > d.maxMeta/2 {
			break
		}
		buf = encodeMeta(buf, r)
	}
	path := filepath.Join(d.dir, "meta.log")
	if err := os.WriteFile(path+".tmp", buf, 0o644); err != nil {
		return err
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		return err
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	_ = d.meta.Close()
	d.meta, d.metaSize = f, int64(len(buf))
	return nil
}

// close drains the queue and closes the log.
func (d *disk) close() error {
	d.qmu.Lock()
	d.closed = true
	close(d.queue)
	d.qmu.Unlock()
	<-d.done
	return errors.Join(d.meta.Sync(), d.meta.Close())
}
