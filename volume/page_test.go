package volume_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/graft-cluster/graft/volume"
)

func TestPageIdx_Valid(t *testing.T) {
	tests := []struct {
		idx  volume.PageIdx
		want bool
	}{
		{0, false},
		{1, true},
		{volume.MaxPageIdx, true},
	}
	for _, tt := range tests {
		if got := tt.idx.Valid(); got != tt.want {
			t.Errorf("PageIdx(%d).Valid() = %v, want %v", tt.idx, got, tt.want)
		}
	}
}

func TestValidatePage(t *testing.T) {
	tests := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{name: "exact size", data: make([]byte, volume.PageSize)},
		{name: "nil", data: nil, wantErr: "volume: invalid page: page is 0 bytes, want 4096"},
		{name: "short", data: make([]byte, 100), wantErr: "volume: invalid page: page is 100 bytes, want 4096"},
		{name: "long", data: make([]byte, volume.PageSize+1), wantErr: "volume: invalid page: page is 4097 bytes, want 4096"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := volume.ValidatePage(tt.data)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if !errors.Is(err, volume.ErrInvalidPage) || err.Error() != tt.wantErr {
				t.Fatalf("ValidatePage error = %v, want %q wrapping ErrInvalidPage", err, tt.wantErr)
			}
		})
	}
}

func TestIsZeroPage(t *testing.T) {
	nonZeroLast := volume.ZeroPage()
	nonZeroLast[volume.PageSize-1] = 1
	tests := []struct {
		name string
		data []byte
		want bool
	}{
		{name: "zero page", data: volume.ZeroPage(), want: true},
		{name: "last byte set", data: nonZeroLast, want: false},
		{name: "short zeros", data: make([]byte, 100), want: false},
		{name: "nil", data: nil, want: false},
	}
	for _, tt := range tests {
		if got := volume.IsZeroPage(tt.data); got != tt.want {
			t.Errorf("%s: IsZeroPage = %v, want %v", tt.name, got, tt.want)
		}
	}
}

func TestZeroPage_Fresh(t *testing.T) {
	a := volume.ZeroPage()
	if len(a) != volume.PageSize || !volume.IsZeroPage(a) {
		t.Fatalf("ZeroPage() len %d, zero %v", len(a), volume.IsZeroPage(a))
	}
	a[0] = 0xff
	if b := volume.ZeroPage(); !volume.IsZeroPage(b) {
		t.Fatal("writing to one ZeroPage() result changed the next")
	}
	if !volume.IsZeroPage(volume.ZeroPage()) || volume.IsZeroPage(a) {
		t.Fatal("IsZeroPage was affected by writing to a ZeroPage() result")
	}
}

func TestSnapshot_String(t *testing.T) {
	id, err := volume.IDFromBytes(append([]byte{0x80}, make([]byte, 15)...))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		snap volume.Snapshot
		want string
	}{
		{volume.Snapshot{VID: id, LSN: 12, PageCount: 100}, id.String() + "@12/100"},
		{volume.Snapshot{VID: id}, id.String() + "@0/0"},
		{volume.Snapshot{VID: id, LSN: 1<<64 - 1, PageCount: 1<<32 - 1}, id.String() + "@18446744073709551615/4294967295"},
	}
	for _, tt := range tests {
		if got := tt.snap.String(); got != tt.want {
			t.Errorf("String() = %q, want %q", got, tt.want)
		}
		if !strings.HasPrefix(tt.snap.String(), tt.snap.VID.String()+"@") {
			t.Errorf("String() %q does not start with the vid", tt.snap.String())
		}
	}
}
