package segment_test

import (
	"bytes"
	"crypto/rand"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"testing/iotest"
	"time"

	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

// refBase58 is an independent big.Int base58 encoder used to cross-check
// ID.String.
func refBase58(b []byte) string {
	const alphabet = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
	n := new(big.Int).SetBytes(b)
	var out []byte
	mod := new(big.Int)
	for n.Sign() > 0 {
		n.DivMod(n, big.NewInt(58), mod)
		out = append(out, alphabet[mod.Int64()])
	}
	for _, c := range b {
		if c != 0 {
			break
		}
		out = append(out, '1')
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return string(out)
}

func sidWith(prefix, fill byte) segment.ID {
	var id segment.ID
	for i := range id {
		id[i] = fill
	}
	id[0] = prefix
	return id
}

func newSID(t testing.TB) segment.ID {
	t.Helper()
	id, err := segment.NewID(time.Now(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func TestParseID(t *testing.T) {
	good := sidWith(0x81, 0x5a)
	goodText := good.String()
	withChar := func(c string) string { return goodText[:5] + c + goodText[6:] }

	tests := []struct {
		name    string
		in      string
		want    segment.ID
		wantErr string // substring; empty means success
	}{
		{name: "good id round trips", in: goodText, want: good},
		{name: "smallest id", in: sidWith(0x81, 0).String(), want: sidWith(0x81, 0)},
		{name: "largest id", in: sidWith(0x81, 0xff).String(), want: sidWith(0x81, 0xff)},
		{name: "empty", in: "", wantErr: "got 0 chars, want 22"},
		{name: "21 chars", in: goodText[:21], wantErr: "got 21 chars, want 22"},
		{name: "23 chars", in: goodText + "1", wantErr: "got 23 chars, want 22"},
		{name: "digit zero", in: withChar("0"), wantErr: `bad base58 character '0' at position 5`},
		{name: "capital O", in: withChar("O"), wantErr: `bad base58 character 'O' at position 5`},
		{name: "capital I", in: withChar("I"), wantErr: `bad base58 character 'I' at position 5`},
		{name: "lowercase l", in: withChar("l"), wantErr: `bad base58 character 'l' at position 5`},
		{name: "non-ascii counts as one char", in: goodText[:21] + "é", wantErr: `bad base58 character 'é' at position 21`},
		{name: "volume id is not a segment id", in: volume.ID(sidWith(0x80, 0x11)).String(), wantErr: "prefix byte 0x80, want 0x81"},
		{name: "prefix 0x82", in: sidWith(0x82, 0x00).String(), wantErr: "prefix byte 0x82, want 0x81"},
		{name: "leading ones are zero bytes", in: strings.Repeat("1", 22), wantErr: "prefix byte 0x00, want 0x81"},
		{name: "value beyond 16 bytes", in: strings.Repeat("z", 22), wantErr: "overflows 16 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := segment.ParseID(tt.in)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParseID(%q): %v", tt.in, err)
				}
				if got != tt.want {
					t.Fatalf("ParseID(%q) = %x, want %x", tt.in, got, tt.want)
				}
				if s := got.String(); s != tt.in {
					t.Fatalf("String() = %q, want %q", s, tt.in)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParseID(%q) = %x, want error containing %q", tt.in, got, tt.wantErr)
			}
			if !errors.Is(err, segment.ErrInvalidID) {
				t.Errorf("error %v does not wrap ErrInvalidID", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "segment: invalid id: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestNewID_Layout(t *testing.T) {
	now := time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)
	rnd := []byte{1, 2, 3, 4, 5, 6, 7, 8, 9}
	id, err := segment.NewID(now, bytes.NewReader(rnd))
	if err != nil {
		t.Fatal(err)
	}
	if id[0] != 0x81 {
		t.Errorf("prefix = %#x, want 0x81", id[0])
	}
	if !bytes.Equal(id[7:], rnd) {
		t.Errorf("random bytes = %x, want %x", id[7:], rnd)
	}
	if got := uint64(id[1])<<40 | uint64(id[2])<<32 | uint64(id[3])<<24 | uint64(id[4])<<16 | uint64(id[5])<<8 | uint64(id[6]); got != uint64(now.UnixMilli()) {
		t.Errorf("time field = %d, want big-endian %d", got, now.UnixMilli())
	}
	if got, want := id.Time(), now.Truncate(time.Millisecond); !got.Equal(want) {
		t.Errorf("Time() = %v, want %v", got, want)
	}

	t.Run("time range edges are 22 chars", func(t *testing.T) {
		for _, ms := range []int64{0, 1, 1<<48 - 1} {
			for _, fill := range []byte{0x00, 0xff} {
				id, err := segment.NewID(time.UnixMilli(ms), bytes.NewReader(bytes.Repeat([]byte{fill}, 9)))
				if err != nil {
					t.Fatalf("ms %d: %v", ms, err)
				}
				if got := id.Time().UnixMilli(); got != ms {
					t.Errorf("ms %d: Time() = %d", ms, got)
				}
				if s := id.String(); len(s) != segment.IDTextLen {
					t.Errorf("ms %d fill %#x: String() = %q, %d chars", ms, fill, s, len(s))
				}
			}
		}
	})

	t.Run("random ids match reference base58 and round trip", func(t *testing.T) {
		seen := make(map[segment.ID]bool)
		for range 2000 {
			id := newSID(t)
			if seen[id] {
				t.Fatalf("duplicate id %s", id)
			}
			seen[id] = true
			s := id.String()
			if ref := refBase58(id[:]); s != ref || len(s) != 22 {
				t.Fatalf("String() = %q, reference base58 %q", s, ref)
			}
			if back, err := segment.ParseID(s); err != nil || back != id {
				t.Fatalf("ParseID(%q) = %x, %v; want %x", s, back, err, id)
			}
		}
	})
}

func TestNewID_Errors(t *testing.T) {
	readErr := errors.New("entropy exhausted")
	tests := []struct {
		name    string
		now     time.Time
		rand    []byte
		errRead bool
		wantIs  error
		wantMsg string
	}{
		{name: "before epoch", now: time.UnixMilli(-1), rand: make([]byte, 9), wantIs: segment.ErrInvalidID, wantMsg: "outside the 48-bit"},
		{name: "after 48 bits", now: time.UnixMilli(1 << 48), rand: make([]byte, 9), wantIs: segment.ErrInvalidID, wantMsg: "outside the 48-bit"},
		{name: "short random", now: time.Now(), rand: make([]byte, 8), wantMsg: "read id random bytes: unexpected EOF"},
		{name: "reader error", now: time.Now(), errRead: true, wantIs: readErr, wantMsg: "entropy exhausted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			var id segment.ID
			if tt.errRead {
				id, err = segment.NewID(tt.now, iotest.ErrReader(readErr))
			} else {
				id, err = segment.NewID(tt.now, bytes.NewReader(tt.rand))
			}
			if err == nil {
				t.Fatalf("NewID = %s, want error", id)
			}
			if tt.wantIs != nil && !errors.Is(err, tt.wantIs) {
				t.Errorf("error %v does not wrap %v", err, tt.wantIs)
			}
			if !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("error %q does not contain %q", err, tt.wantMsg)
			}
			if !id.IsZero() {
				t.Errorf("id = %x on error, want zero", id)
			}
		})
	}
}

func TestIDFromBytes(t *testing.T) {
	good := sidWith(0x81, 7)
	tests := []struct {
		name    string
		in      []byte
		wantErr string
	}{
		{name: "good", in: good[:]},
		{name: "nil", in: nil, wantErr: "got 0 bytes, want 16"},
		{name: "15 bytes", in: good[:15], wantErr: "got 15 bytes, want 16"},
		{name: "17 bytes", in: append(good[:], 0), wantErr: "got 17 bytes, want 16"},
		{name: "zero id", in: make([]byte, 16), wantErr: "prefix byte 0x00, want 0x81"},
		{name: "volume id prefix", in: append([]byte{0x80}, good[1:]...), wantErr: "prefix byte 0x80, want 0x81"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := segment.IDFromBytes(tt.in)
			if tt.wantErr == "" {
				if err != nil || !bytes.Equal(id[:], tt.in) {
					t.Fatalf("IDFromBytes(%x) = %x, %v", tt.in, id, err)
				}
				return
			}
			if !errors.Is(err, segment.ErrInvalidID) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("IDFromBytes(%x) error = %v, want ErrInvalidID containing %q", tt.in, err, tt.wantErr)
			}
		})
	}
}

func TestID_IsZeroValid(t *testing.T) {
	var zero segment.ID
	if !zero.IsZero() || zero.Valid() {
		t.Errorf("zero ID: IsZero=%v Valid=%v, want true false", zero.IsZero(), zero.Valid())
	}
	id := newSID(t)
	if id.IsZero() || !id.Valid() {
		t.Errorf("new ID: IsZero=%v Valid=%v, want false true", id.IsZero(), id.Valid())
	}
}

func TestID_Text(t *testing.T) {
	type doc struct {
		SID segment.ID `json:"sid"`
		Opt segment.ID `json:"opt,omitzero"`
	}
	id := newSID(t)
	b, err := json.Marshal(doc{SID: id})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"sid":"` + id.String() + `"}`; string(b) != want {
		t.Fatalf("json = %s, want %s", b, want)
	}
	var back doc
	if err := json.Unmarshal(b, &back); err != nil || back.SID != id {
		t.Fatalf("unmarshal = %+v, %v", back, err)
	}
	if _, err := json.Marshal(doc{}); !errors.Is(err, segment.ErrInvalidID) {
		t.Errorf("marshal zero sid error = %v, want ErrInvalidID", err)
	}
	before := id
	if err := id.UnmarshalText([]byte("nope")); !errors.Is(err, segment.ErrInvalidID) {
		t.Errorf("UnmarshalText error = %v, want ErrInvalidID", err)
	}
	if id != before {
		t.Errorf("UnmarshalText changed the id on error")
	}
}

func FuzzParseID(f *testing.F) {
	f.Add(sidWith(0x81, 0).String())
	f.Add(sidWith(0x81, 0xff).String())
	f.Add(sidWith(0x80, 0xff).String())
	f.Add(strings.Repeat("z", 22))
	f.Add(strings.Repeat("1", 22))
	f.Add("")
	f.Add("é" + sidWith(0x81, 3).String()[1:])
	f.Fuzz(func(t *testing.T, s string) {
		id, err := segment.ParseID(s)
		if err != nil {
			if !errors.Is(err, segment.ErrInvalidID) {
				t.Fatalf("ParseID(%q) error %v does not wrap ErrInvalidID", s, err)
			}
			if !id.IsZero() {
				t.Fatalf("ParseID(%q) returned %x with an error", s, id)
			}
			return
		}
		if !id.Valid() {
			t.Fatalf("ParseID(%q) = %x, invalid prefix", s, id)
		}
		if got := id.String(); got != s {
			t.Fatalf("ParseID(%q).String() = %q: text form not canonical", s, got)
		}
		if back, err := segment.IDFromBytes(id[:]); err != nil || back != id {
			t.Fatalf("IDFromBytes(%x) = %x, %v", id[:], back, err)
		}
	})
}

func FuzzIDFromBytes(f *testing.F) {
	f.Add(make([]byte, 16))
	f.Add(append([]byte{0x81}, make([]byte, 15)...))
	f.Add(append([]byte{0x81}, bytes.Repeat([]byte{0xff}, 15)...))
	f.Add([]byte{0x81})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := segment.IDFromBytes(b)
		wantOK := len(b) == 16 && b[0] == 0x81
		if (err == nil) != wantOK {
			t.Fatalf("IDFromBytes(%x) error = %v, want ok=%v", b, err, wantOK)
		}
		if err != nil {
			if !errors.Is(err, segment.ErrInvalidID) {
				t.Fatalf("error %v does not wrap ErrInvalidID", err)
			}
			return
		}
		s := id.String()
		if back, err := segment.ParseID(s); err != nil || back != id || len(s) != 22 {
			t.Fatalf("ParseID(%q) = %x, %v; want %x", s, back, err, id)
		}
	})
}
