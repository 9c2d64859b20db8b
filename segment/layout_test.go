package segment_test

import (
	"errors"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/graft-cluster/graft/segment"
	"github.com/graft-cluster/graft/volume"
)

func TestKeys(t *testing.T) {
	vid := refBase58(testVID[:])
	tests := []struct {
		name, got, want string
	}{
		{"SegmentKey", segment.SegmentKey(testVID, testSID), "volumes/" + vid + "/segments/" + refBase58(testSID[:])},
		{"LogPrefix", segment.LogPrefix(testVID), "volumes/" + vid + "/log/"},
		{"LogKey 1", segment.LogKey(testVID, 1), "volumes/" + vid + "/log/00000000000000000001"},
		{"LogKey 1234567", segment.LogKey(testVID, 1234567), "volumes/" + vid + "/log/00000000000001234567"},
		{"LogKey max", segment.LogKey(testVID, math.MaxUint64), "volumes/" + vid + "/log/18446744073709551615"},
		{"VolumesPrefix", segment.VolumesPrefix, "volumes/"},
	}
	for _, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("%s = %q, want %q", tt.name, tt.got, tt.want)
		}
	}
	for _, key := range []string{segment.SegmentKey(testVID, testSID), segment.LogKey(testVID, 1)} {
		if !strings.HasPrefix(key, segment.VolumesPrefix) {
			t.Errorf("key %q is not under %q", key, segment.VolumesPrefix)
		}
	}
	if !strings.HasPrefix(segment.LogKey(testVID, 99), segment.LogPrefix(testVID)) {
		t.Errorf("LogKey is not under LogPrefix")
	}
}

func TestLogKey_SortsByLSN(t *testing.T) {
	lsns := []volume.LSN{1, 2, 9, 10, 11, 99, 100, 101, 999, 1000, 1 << 32, 1<<32 + 1, 1e18, 1e19, 1<<63 - 1, 1 << 63, math.MaxUint64 - 1, math.MaxUint64}
	r := rand.New(rand.NewPCG(1, 2))
	for range 100 {
		lsns = append(lsns, volume.LSN(r.Uint64N(1<<(1+r.IntN(63)))+1))
	}
	shuffled := slices.Clone(lsns)
	r.Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	keys := make([]string, len(shuffled))
	for i, lsn := range shuffled {
		keys[i] = segment.LogKey(testVID, lsn)
	}
	slices.Sort(keys)
	slices.Sort(lsns)
	for i, key := range keys {
		vid, lsn, err := segment.ParseLogKey(key)
		if err != nil || vid != testVID || lsn != lsns[i] {
			t.Fatalf("sorted key %d %q parses to %s, %d, %v; want lsn %d", i, key, vid, lsn, err, lsns[i])
		}
	}
}

func TestParseLogKey(t *testing.T) {
	vid := testVID.String()
	other := volume.ID{0x80, 0xff, 0xee, 0xdd, 0xcc, 0xbb, 0xaa, 0x99, 0x88, 0x77, 0x66, 0x55, 0x44, 0x33, 0x22, 0x11}
	tests := []struct {
		name    string
		key     string
		wantVID volume.ID
		wantLSN volume.LSN
		alsoIs  error  // another error the error must wrap
		wantErr string // message after `segment: invalid object key "<key>": `; empty means success
	}{
		{name: "lsn 1", key: segment.LogKey(testVID, 1), wantVID: testVID, wantLSN: 1},
		{name: "largest lsn", key: segment.LogKey(testVID, math.MaxUint64), wantVID: testVID, wantLSN: math.MaxUint64},
		{name: "other volume", key: "volumes/" + other.String() + "/log/00000000000000000042", wantVID: other, wantLSN: 42},
		{name: "lsn 0", key: segment.LogKey(testVID, 0), wantErr: "lsn 0 is invalid"},
		{name: "19 digits", key: "volumes/" + vid + "/log/0000000000000000001", wantErr: `lsn "0000000000000000001" is 19 characters, want 20 digits`},
		{name: "21 digits", key: "volumes/" + vid + "/log/000000000000000000001", wantErr: `lsn "000000000000000000001" is 21 characters, want 20 digits`},
		{name: "unpadded", key: "volumes/" + vid + "/log/17", wantErr: `lsn "17" is 2 characters, want 20 digits`},
		{name: "no lsn", key: segment.LogPrefix(testVID), wantErr: `lsn "" is 0 characters, want 20 digits`},
		{name: "sign", key: "volumes/" + vid + "/log/+0000000000000000001", wantErr: `lsn "+0000000000000000001" has non-digit '+' at position 0`},
		{name: "hex", key: "volumes/" + vid + "/log/0000000000000000000a", wantErr: `lsn "0000000000000000000a" has non-digit 'a' at position 19`},
		{name: "suffix", key: segment.LogKey(testVID, 5) + ".tmp", wantErr: `lsn "00000000000000000005.tmp" is 24 characters, want 20 digits`},
		{name: "sub key", key: segment.LogKey(testVID, 5) + "/x", wantErr: `lsn "00000000000000000005/x" is 22 characters, want 20 digits`},
		{name: "above 2^64-1", key: "volumes/" + vid + "/log/18446744073709551616", wantErr: "lsn 18446744073709551616 is above 2^64-1"},
		{name: "largest digits", key: "volumes/" + vid + "/log/99999999999999999999", wantErr: "lsn 99999999999999999999 is above 2^64-1"},
		{name: "segment key", key: segment.SegmentKey(testVID, testSID), wantErr: `not a log key: want "log/" after the volume id`},
		{name: "double slash", key: "volumes/" + vid + "//log/00000000000000000001", wantErr: `not a log key: want "log/" after the volume id`},
		{name: "no slash after vid", key: "volumes/" + vid, wantErr: `no "/" after the volume id`},
		{name: "empty", key: "", wantErr: `want prefix "volumes/"`},
		{name: "leading slash", key: "/" + segment.LogKey(testVID, 1), wantErr: `want prefix "volumes/"`},
		{name: "upper case", key: "Volumes/" + vid + "/log/00000000000000000001", wantErr: `want prefix "volumes/"`},
		{name: "store prefix", key: "tenant/" + segment.LogKey(testVID, 1), wantErr: `want prefix "volumes/"`},
		{
			name: "segment id as vid", key: segment.LogKey(volume.ID(testSID), 1), alsoIs: volume.ErrInvalidID,
			wantErr: "volume: invalid id: " + testSID.String() + " has prefix byte 0x81, want 0x80",
		},
		{name: "zero vid", key: segment.LogKey(volume.ID{}, 1), alsoIs: volume.ErrInvalidID, wantErr: "volume: invalid id: got 16 chars, want 22"},
		{name: "short vid", key: "volumes/" + vid[1:] + "/log/00000000000000000001", alsoIs: volume.ErrInvalidID, wantErr: "volume: invalid id: got 21 chars, want 22"},
		{name: "bad base58", key: "volumes/0" + vid[1:] + "/log/00000000000000000001", alsoIs: volume.ErrInvalidID, wantErr: "volume: invalid id: bad base58 character '0' at position 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vid, lsn, err := segment.ParseLogKey(tt.key)
			if tt.wantErr == "" {
				if err != nil || vid != tt.wantVID || lsn != tt.wantLSN {
					t.Fatalf("ParseLogKey(%q) = %s, %d, %v; want %s, %d", tt.key, vid, lsn, err, tt.wantVID, tt.wantLSN)
				}
				if got := segment.LogKey(vid, lsn); got != tt.key {
					t.Fatalf("LogKey(%s, %d) = %q, parsed from %q", vid, lsn, got, tt.key)
				}
				return
			}
			want := `segment: invalid object key "` + tt.key + `": ` + tt.wantErr
			if err == nil || err.Error() != want {
				t.Fatalf("ParseLogKey(%q) error = %v, want %q", tt.key, err, want)
			}
			if !errors.Is(err, segment.ErrInvalidKey) {
				t.Errorf("error %v does not wrap ErrInvalidKey", err)
			}
			if tt.alsoIs != nil && !errors.Is(err, tt.alsoIs) {
				t.Errorf("error %v does not wrap %v", err, tt.alsoIs)
			}
			if !vid.IsZero() || lsn != 0 {
				t.Errorf("ParseLogKey(%q) = %s, %d with an error", tt.key, vid, lsn)
			}
		})
	}
}

func TestParseVolumeKey(t *testing.T) {
	vid := testVID.String()
	tests := []struct {
		name    string
		key     string
		wantErr string // message after `segment: invalid object key "<key>": `; empty means success
	}{
		{name: "segment key", key: segment.SegmentKey(testVID, testSID)},
		{name: "log key", key: segment.LogKey(testVID, 7)},
		{name: "log prefix", key: segment.LogPrefix(testVID)},
		{name: "volume prefix", key: "volumes/" + vid + "/"},
		{name: "any key under the volume", key: "volumes/" + vid + "/future/kind/of/object"},
		{name: "no slash after vid", key: "volumes/" + vid, wantErr: `no "/" after the volume id`},
		{name: "volumes prefix only", key: "volumes/", wantErr: `no "/" after the volume id`},
		{name: "empty vid", key: "volumes//log/", wantErr: "volume: invalid id: got 0 chars, want 22"},
		{name: "vid with a suffix", key: "volumes/" + vid + "x/", wantErr: "volume: invalid id: got 23 chars, want 22"},
		{name: "outside volumes", key: "segments/" + vid + "/", wantErr: `want prefix "volumes/"`},
		{name: "empty", key: "", wantErr: `want prefix "volumes/"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := segment.ParseVolumeKey(tt.key)
			if tt.wantErr == "" {
				if err != nil || got != testVID {
					t.Fatalf("ParseVolumeKey(%q) = %s, %v; want %s", tt.key, got, err, testVID)
				}
				return
			}
			want := `segment: invalid object key "` + tt.key + `": ` + tt.wantErr
			if err == nil || err.Error() != want || !errors.Is(err, segment.ErrInvalidKey) {
				t.Fatalf("ParseVolumeKey(%q) error = %v, want %q", tt.key, err, want)
			}
			if !got.IsZero() {
				t.Errorf("ParseVolumeKey(%q) = %s with an error", tt.key, got)
			}
		})
	}
}

func TestParseLogKey_RoundTrip(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 1000 {
		var vid volume.ID
		for i := range vid {
			vid[i] = byte(r.Uint32())
		}
		vid[0] = volume.IDPrefix
		lsn := volume.LSN(r.Uint64N(1<<(1+r.IntN(63))) + 1)
		key := segment.LogKey(vid, lsn)
		gotVID, gotLSN, err := segment.ParseLogKey(key)
		if err != nil || gotVID != vid || gotLSN != lsn {
			t.Fatalf("ParseLogKey(LogKey(%s, %d)) = %s, %d, %v", vid, lsn, gotVID, gotLSN, err)
		}
		if v, err := segment.ParseVolumeKey(segment.SegmentKey(vid, testSID)); err != nil || v != vid {
			t.Fatalf("ParseVolumeKey(SegmentKey(%s, ...)) = %s, %v", vid, v, err)
		}
	}
}

func FuzzParseLogKey(f *testing.F) {
	f.Add(segment.LogKey(testVID, 1))
	f.Add(segment.LogKey(testVID, math.MaxUint64))
	f.Add(segment.LogKey(testVID, 0))
	f.Add(segment.LogKey(volume.ID(testSID), 1))
	f.Add(segment.LogPrefix(testVID) + "18446744073709551616")
	f.Add(segment.LogPrefix(testVID) + "-0000000000000000001")
	f.Add(segment.SegmentKey(testVID, testSID))
	f.Add("volumes/")
	f.Add("")
	f.Fuzz(func(t *testing.T, key string) {
		vid, lsn, err := segment.ParseLogKey(key)
		if err != nil {
			if !errors.Is(err, segment.ErrInvalidKey) {
				t.Fatalf("ParseLogKey(%q) error %v does not wrap ErrInvalidKey", key, err)
			}
			if !vid.IsZero() || lsn != 0 {
				t.Fatalf("ParseLogKey(%q) = %s, %d with an error", key, vid, lsn)
			}
		} else {
			if !vid.Valid() || lsn == 0 {
				t.Fatalf("ParseLogKey(%q) = %x, %d: invalid", key, vid, lsn)
			}
			if got := segment.LogKey(vid, lsn); got != key {
				t.Fatalf("ParseLogKey(%q) = %s, %d, which LogKey writes as %q: not canonical", key, vid, lsn, got)
			}
		}

		v, verr := segment.ParseVolumeKey(key)
		switch {
		case verr != nil && !errors.Is(verr, segment.ErrInvalidKey):
			t.Fatalf("ParseVolumeKey(%q) error %v does not wrap ErrInvalidKey", key, verr)
		case verr != nil && err == nil:
			t.Fatalf("ParseVolumeKey(%q) error %v for a log key", key, verr)
		case verr != nil:
			if !v.IsZero() {
				t.Fatalf("ParseVolumeKey(%q) = %s with an error", key, v)
			}
		case !strings.HasPrefix(key, segment.VolumesPrefix+v.String()+"/"):
			t.Fatalf("ParseVolumeKey(%q) = %s, but the key is not under it", key, v)
		case err == nil && v != vid:
			t.Fatalf("ParseVolumeKey(%q) = %s, ParseLogKey says %s", key, v, vid)
		}
	})
}

func FuzzParseCheckpointGenKey(f *testing.F) {
	f.Add(segment.CheckpointKey(testVID, 1))
	f.Add(segment.CheckpointGenKey(testVID, 7, 1))
	f.Add(segment.CheckpointGenKey(testVID, math.MaxUint64, math.MaxUint64-1))
	f.Add(segment.CheckpointKey(testVID, 5) + ".18446744073709551615")
	f.Add(segment.CheckpointKey(testVID, 5) + ".")
	f.Add(segment.CheckpointListStart(testVID, 5))
	f.Add(segment.DeltaKey(testVID, 5))
	f.Add("")
	f.Fuzz(func(t *testing.T, key string) {
		vid, lsn, gen, err := segment.ParseCheckpointGenKey(key)
		if err != nil {
			if !errors.Is(err, segment.ErrInvalidKey) {
				t.Fatalf("ParseCheckpointGenKey(%q) error %v does not wrap ErrInvalidKey", key, err)
			}
			if !vid.IsZero() || lsn != 0 || gen != 0 {
				t.Fatalf("ParseCheckpointGenKey(%q) = %s, %d, %d with an error", key, vid, lsn, gen)
			}
			return
		}
		if !vid.Valid() || lsn == 0 {
			t.Fatalf("ParseCheckpointGenKey(%q) = %x, %d: invalid", key, vid, lsn)
		}
		if got := segment.CheckpointGenKey(vid, lsn, gen); got != key {
			t.Fatalf("ParseCheckpointGenKey(%q) = %s, %d, %d, which CheckpointGenKey writes as %q: not canonical", key, vid, lsn, gen, got)
		}
		if v, l, err := segment.ParseCheckpointKey(key); err != nil || v != vid || l != lsn {
			t.Fatalf("ParseCheckpointKey(%q) = %s, %d, %v; the generation parse said %s, %d", key, v, l, err, vid, lsn)
		}
	})
}
