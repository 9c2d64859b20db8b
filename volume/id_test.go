package volume_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"testing/iotest"
	"time"

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

func idWith(prefix, fill byte) volume.ID {
	var id volume.ID
	for i := range id {
		id[i] = fill
	}
	id[0] = prefix
	return id
}

func TestParseID(t *testing.T) {
	good := idWith(0x80, 0x5a)
	goodText := good.String()
	tooBig := strings.Repeat("z", 22)
	// Replace a character in the middle of a valid ID.
	withChar := func(c string) string { return goodText[:5] + c + goodText[6:] }

	tests := []struct {
		name    string
		in      string
		want    volume.ID
		wantErr string // substring; empty means success
	}{
		{name: "good id round trips", in: goodText, want: good},
		{name: "smallest id", in: idWith(0x80, 0).String(), want: idWith(0x80, 0)},
		{name: "largest id", in: idWith(0x80, 0xff).String(), want: idWith(0x80, 0xff)},
		{name: "empty", in: "", wantErr: "got 0 chars, want 22"},
		{name: "21 chars", in: goodText[:21], wantErr: "got 21 chars, want 22"},
		{name: "23 chars", in: goodText + "1", wantErr: "got 23 chars, want 22"},
		{name: "digit zero", in: withChar("0"), wantErr: `bad base58 character '0' at position 5`},
		{name: "capital O", in: withChar("O"), wantErr: `bad base58 character 'O' at position 5`},
		{name: "capital I", in: withChar("I"), wantErr: `bad base58 character 'I' at position 5`},
		{name: "lowercase l", in: withChar("l"), wantErr: `bad base58 character 'l' at position 5`},
		{name: "first char bad", in: "-" + goodText[1:], wantErr: `bad base58 character '-' at position 0`},
		{name: "non-ascii counts as one char", in: goodText[:21] + "é", wantErr: `bad base58 character 'é' at position 21`},
		{name: "non-ascii length in chars", in: goodText[:20] + "é", wantErr: "got 21 chars, want 22"},
		{name: "prefix 0x7f", in: idWith(0x7f, 0xff).String(), wantErr: "prefix byte 0x7f, want 0x80"},
		{name: "prefix 0x81", in: idWith(0x81, 0x00).String(), wantErr: "prefix byte 0x81, want 0x80"},
		{name: "leading ones are zero bytes", in: strings.Repeat("1", 22), wantErr: "prefix byte 0x00, want 0x80"},
		{name: "value beyond 16 bytes", in: tooBig, wantErr: "overflows 16 bytes"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := volume.ParseID(tt.in)
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
			if !errors.Is(err, volume.ErrInvalidID) {
				t.Errorf("error %v does not wrap ErrInvalidID", err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			if !strings.HasPrefix(err.Error(), "volume: invalid id: ") {
				t.Errorf("error %q lacks the package prefix", err)
			}
		})
	}
}

func TestNewID_Layout(t *testing.T) {
	now := time.Date(2025, 3, 14, 15, 9, 26, 535897932, time.UTC)
	randoms := map[string][]byte{
		"all zero random": bytes.Repeat([]byte{0x00}, 9),
		"all 0xff random": bytes.Repeat([]byte{0xff}, 9),
		"mixed random":    {1, 2, 3, 4, 5, 6, 7, 8, 9},
	}
	for name, rnd := range randoms {
		t.Run(name, func(t *testing.T) {
			id, err := volume.NewID(now, bytes.NewReader(rnd))
			if err != nil {
				t.Fatal(err)
			}
			if id[0] != 0x80 {
				t.Errorf("prefix = %#x, want 0x80", id[0])
			}
			if !bytes.Equal(id[7:], rnd) {
				t.Errorf("random bytes = %x, want %x", id[7:], rnd)
			}
			if got, want := id.Time(), now.Truncate(time.Millisecond); !got.Equal(want) {
				t.Errorf("Time() = %v, want %v", got, want)
			}
			if got := uint64(id[1])<<40 | uint64(id[2])<<32 | uint64(id[3])<<24 | uint64(id[4])<<16 | uint64(id[5])<<8 | uint64(id[6]); got != uint64(now.UnixMilli()) {
				t.Errorf("time field = %d, want big-endian %d", got, now.UnixMilli())
			}
			if s := id.String(); len(s) != volume.IDTextLen {
				t.Errorf("String() = %q, %d chars, want 22", s, len(s))
			}
		})
	}

	t.Run("time range edges", func(t *testing.T) {
		for _, ms := range []int64{0, 1, 1<<48 - 1} {
			for _, fill := range []byte{0x00, 0xff} {
				id, err := volume.NewID(time.UnixMilli(ms), bytes.NewReader(bytes.Repeat([]byte{fill}, 9)))
				if err != nil {
					t.Fatalf("ms %d: %v", ms, err)
				}
				if got := id.Time().UnixMilli(); got != ms {
					t.Errorf("ms %d: Time() = %d", ms, got)
				}
				if s := id.String(); len(s) != 22 {
					t.Errorf("ms %d fill %#x: String() = %q, %d chars", ms, fill, s, len(s))
				}
			}
		}
	})

	t.Run("many random ids are 22 chars and round trip", func(t *testing.T) {
		seen := make(map[volume.ID]bool)
		for i := 0; i < 5000; i++ {
			id := volume.MustNewID()
			if seen[id] {
				t.Fatalf("duplicate id %s", id)
			}
			seen[id] = true
			s := id.String()
			if len(s) != 22 {
				t.Fatalf("String() = %q, %d chars", s, len(s))
			}
			if ref := refBase58(id[:]); s != ref {
				t.Fatalf("String() = %q, reference base58 %q", s, ref)
			}
			back, err := volume.ParseID(s)
			if err != nil || back != id {
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
		{name: "before epoch", now: time.UnixMilli(-1), rand: make([]byte, 9), wantIs: volume.ErrInvalidID, wantMsg: "outside the 48-bit"},
		{name: "after 48 bits", now: time.UnixMilli(1 << 48), rand: make([]byte, 9), wantIs: volume.ErrInvalidID, wantMsg: "outside the 48-bit"},
		{name: "short random", now: time.Now(), rand: make([]byte, 8), wantMsg: "read id random bytes: unexpected EOF"},
		{name: "reader error", now: time.Now(), errRead: true, wantIs: readErr, wantMsg: "entropy exhausted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			var id volume.ID
			if tt.errRead {
				id, err = volume.NewID(tt.now, iotest.ErrReader(readErr))
			} else {
				id, err = volume.NewID(tt.now, bytes.NewReader(tt.rand))
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
	good := idWith(0x80, 7)
	tests := []struct {
		name    string
		in      []byte
		wantErr string
	}{
		{name: "good", in: good[:]},
		{name: "nil", in: nil, wantErr: "got 0 bytes, want 16"},
		{name: "15 bytes", in: good[:15], wantErr: "got 15 bytes, want 16"},
		{name: "17 bytes", in: append(good[:], 0), wantErr: "got 17 bytes, want 16"},
		{name: "zero id", in: make([]byte, 16), wantErr: "prefix byte 0x00, want 0x80"},
		{name: "prefix 0xff", in: bytes.Repeat([]byte{0xff}, 16), wantErr: "prefix byte 0xff, want 0x80"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			id, err := volume.IDFromBytes(tt.in)
			if tt.wantErr == "" {
				if err != nil || !bytes.Equal(id[:], tt.in) {
					t.Fatalf("IDFromBytes(%x) = %x, %v", tt.in, id, err)
				}
				return
			}
			if !errors.Is(err, volume.ErrInvalidID) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("IDFromBytes(%x) error = %v, want ErrInvalidID containing %q", tt.in, err, tt.wantErr)
			}
		})
	}
}

func TestID_IsZeroValid(t *testing.T) {
	var zero volume.ID
	if !zero.IsZero() || zero.Valid() {
		t.Errorf("zero ID: IsZero=%v Valid=%v, want true false", zero.IsZero(), zero.Valid())
	}
	id := volume.MustNewID()
	if id.IsZero() || !id.Valid() {
		t.Errorf("new ID: IsZero=%v Valid=%v, want false true", id.IsZero(), id.Valid())
	}
}

func TestID_Text(t *testing.T) {
	type doc struct {
		VID volume.ID `json:"vid"`
		Opt volume.ID `json:"opt,omitzero"`
	}
	id := volume.MustNewID()
	b, err := json.Marshal(doc{VID: id})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"vid":"` + id.String() + `"}`; string(b) != want {
		t.Fatalf("json = %s, want %s", b, want)
	}
	var back doc
	if err := json.Unmarshal(b, &back); err != nil || back.VID != id {
		t.Fatalf("unmarshal = %+v, %v", back, err)
	}

	if _, err := json.Marshal(doc{}); !errors.Is(err, volume.ErrInvalidID) {
		t.Errorf("marshal zero vid error = %v, want ErrInvalidID", err)
	}
	before := id
	if err := id.UnmarshalText([]byte("nope")); !errors.Is(err, volume.ErrInvalidID) {
		t.Errorf("UnmarshalText error = %v, want ErrInvalidID", err)
	}
	if id != before {
		t.Errorf("UnmarshalText changed the id on error")
	}
}

func FuzzParseID(f *testing.F) {
	f.Add(idWith(0x80, 0).String())
	f.Add(idWith(0x80, 0xff).String())
	f.Add(idWith(0x7f, 0xff).String())
	f.Add(strings.Repeat("z", 22))
	f.Add(strings.Repeat("1", 22))
	f.Add("")
	f.Add("0OIl0OIl0OIl0OIl0OIl0O")
	f.Add("é" + idWith(0x80, 3).String()[1:])
	f.Fuzz(func(t *testing.T, s string) {
		id, err := volume.ParseID(s)
		if err != nil {
			if !errors.Is(err, volume.ErrInvalidID) {
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
		if back, err := volume.IDFromBytes(id[:]); err != nil || back != id {
			t.Fatalf("IDFromBytes(%x) = %x, %v", id[:], back, err)
		}
	})
}

func FuzzIDFromBytes(f *testing.F) {
	f.Add(make([]byte, 16))
	f.Add(append([]byte{0x80}, make([]byte, 15)...))
	f.Add(bytes.Repeat([]byte{0xff}, 16))
	f.Add(append([]byte{0x80}, bytes.Repeat([]byte{0xff}, 15)...))
	f.Add([]byte{0x80})
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := volume.IDFromBytes(b)
		wantOK := len(b) == 16 && b[0] == 0x80
		if (err == nil) != wantOK {
			t.Fatalf("IDFromBytes(%x) error = %v, want ok=%v", b, err, wantOK)
		}
		if err != nil {
			if !errors.Is(err, volume.ErrInvalidID) {
				t.Fatalf("error %v does not wrap ErrInvalidID", err)
			}
			return
		}
		s := id.String()
		if len(s) != 22 {
			t.Fatalf("String() = %q, %d chars", s, len(s))
		}
		if back, err := volume.ParseID(s); err != nil || back != id {
			t.Fatalf("ParseID(%q) = %x, %v; want %x", s, back, err, id)
		}
	})
}
