package volume_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/graft-cluster/graft/volume"
)

func TestParseRequestID(t *testing.T) {
	id := volume.MustNewID()
	if got, err := volume.ParseRequestID(id.String()); err != nil || got != id {
		t.Fatalf("ParseRequestID(%s) = %v, %v", id, got, err)
	}
	_, err := volume.ParseRequestID("nope")
	if !errors.Is(err, volume.ErrInvalidID) || !strings.HasPrefix(err.Error(), `vid "nope": `) {
		t.Fatalf("ParseRequestID(nope) = %v", err)
	}
}

func TestParseReadIndexes(t *testing.T) {
	got, err := volume.ParseReadIndexes([]uint32{3, 1, 2}, 3)
	if err != nil || len(got) != 3 || got[0] != 3 || got[2] != 2 {
		t.Fatalf("ParseReadIndexes = %v, %v", got, err)
	}
	for _, tc := range []struct {
		pages []uint32
		max   int
		want  string
	}{
		{[]uint32{1, 2, 3}, 2, "3 pages requested, limit 2 (max pages per read)"},
		{[]uint32{1, 0}, 0, "pages[1]: page index 0 is invalid"},
		{[]uint32{4, 5, 4}, 0, "pages[2]: index 4 duplicates pages[0]"},
	} {
		if _, err := volume.ParseReadIndexes(tc.pages, tc.max); err == nil || err.Error() != tc.want {
			t.Errorf("ParseReadIndexes(%v, %d) = %v, want %q", tc.pages, tc.max, err, tc.want)
		}
	}
}

func TestCheckRange(t *testing.T) {
	if err := volume.CheckRange(3, 0); err != nil {
		t.Fatalf("CheckRange(3, head) = %v", err)
	}
	if err := volume.CheckRange(5, 2); err == nil || err.Error() != "since_lsn 5 is after until_lsn 2" {
		t.Fatalf("CheckRange(5, 2) = %v", err)
	}
}
