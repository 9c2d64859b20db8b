package sqlite

import (
	"context"
	"fmt"
	"strings"

	"github.com/ncruces/go-sqlite3"
	"github.com/ncruces/go-sqlite3/vfs"
)

// Pragma refuses the settings the VFS cannot honor and answers the graft_*
// pragmas. Each graft_* pragma answers one row, one text column.
//
//	graft_status    the volume's sync status (ok, rejected, ...)
//	graft_snapshot  vid, local LSN, remote LSN and page count of the latest local snapshot
//	graft_pull      fast-forward to the cluster's head (pages fetched lazily), then graft_snapshot
//	graft_push      push pending local commits, then graft_snapshot
//	graft_reset     drop local commits and adopt the remote head, then graft_snapshot
//	graft_fork      copy the replica's state into a new volume; answers its ID
//	graft_pages     pages present locally, pending (known, not fetched), fetched so far
func (f *file) Pragma(name, value string) (string, error) {
	value = strings.ToLower(strings.Trim(value, `'"`))
	switch name {
	case "journal_mode":
		switch value {
		case "wal", "wal2":
			return "", ErrWAL
		case "off":
			return "", ErrJournalOff
		}
		return "", sqlite3.NOTFOUND
	case "page_size":
		if value != "" && value != "4096" {
			return "", fmt.Errorf("%w; asked for %s", ErrPageSize, value)
		}
		return "", sqlite3.NOTFOUND
	}
	if !strings.HasPrefix(name, "graft_") {
		return "", sqlite3.NOTFOUND
	}
	ctx, cancel := f.ctx()
	defer cancel()
	b := f.s.b
	switch name {
	case "graft_status":
		return b.Status(), nil
	case "graft_snapshot":
		return b.Snapshot().String(), nil
	case "graft_pages":
		p := b.Pages()
		return fmt.Sprintf("present=%d pending=%d fetched=%d total=%d", p.Present, p.Pending, p.Fetched, b.Snapshot().PageCount), nil
	case "graft_push":
		if err := b.Push(ctx); err != nil {
			return "", fmt.Errorf("graft_push %s: %w", b.VID(), err)
		}
		return b.Snapshot().String(), nil
	case "graft_pull", "graft_reset":
		if err := f.moveVolume(ctx, name); err != nil {
			return "", err
		}
		return b.Snapshot().String(), nil
	case "graft_fork":
		vid, err := b.Fork(ctx)
		if err != nil {
			return "", fmt.Errorf("graft_fork %s: %w", b.VID(), err)
		}
		return vid.String(), nil
	}
	return "", fmt.Errorf("%w: %s (known: graft_status, graft_snapshot, graft_pull, graft_push, graft_reset, graft_fork, graft_pages)", ErrUnknownPragma, name)
}

// moveVolume pulls or resets under the volume's write lock, so it never
// races a transaction's commit.
func (f *file) moveVolume(ctx context.Context, name string) error {
	if f.lock >= vfs.LOCK_RESERVED {
		return fmt.Errorf("%s: %w", name, ErrInWriteTxn)
	}
	if err := f.s.lockWrite(ctx); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	defer f.s.unlockWrite()
	var err error
	if name == "graft_pull" {
		err = f.s.b.Pull(ctx)
	} else {
		err = f.s.b.Reset(ctx)
	}
	if err != nil {
		return fmt.Errorf("%s %s: %w", name, f.s.b.VID(), err)
	}
	if err := f.checkDatabase(); err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	return nil
}
