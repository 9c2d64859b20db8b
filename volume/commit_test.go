package volume_test

import (
	"errors"
	"testing"

	"github.com/graft-cluster/graft/volume"
)

func page(idx volume.PageIdx, fill byte) volume.PageWrite {
	data := make([]byte, volume.PageSize)
	for i := range data {
		data[i] = fill
	}
	return volume.PageWrite{Idx: idx, Data: data}
}

func idxs(pages []volume.PageWrite) []volume.PageIdx {
	out := make([]volume.PageIdx, len(pages))
	for i, p := range pages {
		out[i] = p.Idx
	}
	return out
}

func TestValidateCommit(t *testing.T) {
	short := volume.PageWrite{Idx: 5, Data: make([]byte, 100)}
	tests := []struct {
		name      string
		pageCount uint32
		pages     []volume.PageWrite
		limits    volume.Limits
		want      []volume.PageIdx
		wantErr   string // exact message; empty means success
		alsoIs    error  // another sentinel the error must wrap
	}{
		{name: "nil commit", pageCount: 8, pages: nil, want: []volume.PageIdx{}},
		{name: "empty commit at zero page count", pageCount: 0, pages: []volume.PageWrite{}, want: []volume.PageIdx{}},
		{name: "sorted", pageCount: 8, pages: []volume.PageWrite{page(1, 1), page(2, 2), page(8, 8)}, want: []volume.PageIdx{1, 2, 8}},
		{name: "unsorted is sorted", pageCount: 8, pages: []volume.PageWrite{page(8, 8), page(1, 1), page(5, 5), page(2, 2)}, want: []volume.PageIdx{1, 2, 5, 8}},
		{name: "max index", pageCount: volume.MaxPageIdx, pages: []volume.PageWrite{page(volume.MaxPageIdx, 1), page(1, 1)}, want: []volume.PageIdx{1, volume.MaxPageIdx}},
		{name: "at limit", pageCount: 8, pages: []volume.PageWrite{page(1, 1), page(2, 2)}, limits: volume.Limits{MaxPages: 2}, want: []volume.PageIdx{1, 2}},
		{name: "negative limit means none", pageCount: 8, pages: []volume.PageWrite{page(1, 1), page(2, 2)}, limits: volume.Limits{MaxPages: -1}, want: []volume.PageIdx{1, 2}},
		{
			name: "index zero", pageCount: 8,
			pages:   []volume.PageWrite{page(1, 1), page(2, 2), page(3, 3), page(0, 0)},
			wantErr: "volume: invalid commit: pages[3] (idx 0): page index 0 is invalid",
		},
		{
			name: "beyond page count", pageCount: 8,
			pages:   []volume.PageWrite{page(1, 1), page(2, 2), page(9, 9)},
			wantErr: "volume: invalid commit: pages[2] (idx 9): index beyond page_count 8",
		},
		{
			name: "any page beyond zero page count", pageCount: 0,
			pages:   []volume.PageWrite{page(1, 1)},
			wantErr: "volume: invalid commit: pages[0] (idx 1): index beyond page_count 0",
		},
		{
			name: "duplicate", pageCount: 8,
			pages:   []volume.PageWrite{page(3, 3), page(7, 7), page(1, 1), page(2, 2), page(7, 8)},
			wantErr: "volume: invalid commit: pages[4] (idx 7): duplicate of pages[1]",
		},
		{
			name: "earliest duplicate is reported", pageCount: 8,
			pages:   []volume.PageWrite{page(5, 0), page(2, 0), page(5, 0), page(2, 0), page(5, 0)},
			wantErr: "volume: invalid commit: pages[2] (idx 5): duplicate of pages[0]",
		},
		{
			name: "adjacent duplicate in sorted input", pageCount: 8,
			pages:   []volume.PageWrite{page(1, 0), page(2, 0), page(2, 0)},
			wantErr: "volume: invalid commit: pages[2] (idx 2): duplicate of pages[1]",
		},
		{
			name: "short page", pageCount: 8,
			pages:   []volume.PageWrite{short, page(1, 1)},
			wantErr: "volume: invalid commit: pages[0] (idx 5): page is 100 bytes, want 4096",
			alsoIs:  volume.ErrInvalidPage,
		},
		{
			name: "nil page data", pageCount: 8,
			pages:   []volume.PageWrite{page(1, 1), {Idx: 2}},
			wantErr: "volume: invalid commit: pages[1] (idx 2): page is 0 bytes, want 4096",
			alsoIs:  volume.ErrInvalidPage,
		},
		{
			name: "too many pages", pageCount: 1000,
			pages:   make([]volume.PageWrite, 300),
			limits:  volume.Limits{MaxPages: 256},
			wantErr: "volume: invalid commit: 300 pages, limit 256 (max pages per commit)",
		},
		{
			name: "first bad page in request order wins", pageCount: 8,
			pages:   []volume.PageWrite{page(4, 0), page(4, 0), page(9, 0), page(0, 0)},
			wantErr: "volume: invalid commit: pages[2] (idx 9): index beyond page_count 8",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var before []volume.PageIdx
			if tt.pages != nil {
				before = idxs(tt.pages)
			}
			got, err := volume.ValidateCommit(tt.pageCount, tt.pages, tt.limits)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ValidateCommit = %v, want error %q", idxs(got), tt.wantErr)
				}
				if err.Error() != tt.wantErr {
					t.Errorf("error = %q, want %q", err, tt.wantErr)
				}
				if !errors.Is(err, volume.ErrInvalidCommit) {
					t.Errorf("error %v does not wrap ErrInvalidCommit", err)
				}
				if tt.alsoIs != nil && !errors.Is(err, tt.alsoIs) {
					t.Errorf("error %v does not wrap %v", err, tt.alsoIs)
				}
				if got != nil {
					t.Errorf("pages = %v on error, want nil", idxs(got))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got == nil {
				t.Fatal("got nil slice, want a new (possibly empty) slice")
			}
			if g := idxs(got); !equalIdxs(g, tt.want) {
				t.Errorf("order = %v, want %v", g, tt.want)
			}
			if tt.pages != nil && !equalIdxs(idxs(tt.pages), before) {
				t.Errorf("input reordered to %v", idxs(tt.pages))
			}
			// Data is not copied: each output page shares its input's bytes.
			for _, o := range got {
				found := false
				for _, in := range tt.pages {
					if in.Idx == o.Idx && &in.Data[0] == &o.Data[0] {
						found = true
					}
				}
				if !found {
					t.Errorf("page %d: data not shared with the input", o.Idx)
				}
			}
		})
	}
}

func TestValidateCommit_NewSlice(t *testing.T) {
	pages := []volume.PageWrite{page(1, 1), page(2, 2)}
	got, err := volume.ValidateCommit(2, pages, volume.Limits{})
	if err != nil {
		t.Fatal(err)
	}
	got[0].Idx = 99
	if pages[0].Idx != 1 {
		t.Fatal("the returned slice aliases the input slice")
	}
}

func equalIdxs(a, b []volume.PageIdx) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
