package fsm_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"slices"
	"testing"

	"github.com/graft-cluster/graft/fsm"
	"github.com/graft-cluster/graft/volume"
)

func TestFSM_RevokeToken(t *testing.T) {
	h := newHarness(t)
	h.admin(fsm.EncodeRevokeToken(fsm.RevokeToken{ID: "a", ExpiresUnix: 100, TimeUnix: 10}))
	h.admin(fsm.EncodeRevokeToken(fsm.RevokeToken{ID: "forever", TimeUnix: 20}))
	if !h.f.TokenRevoked("a") || !h.f.TokenRevoked("forever") || h.f.TokenRevoked("b") {
		t.Fatalf("revoked %v", h.f.RevokedTokens())
	}
	// A later revocation drops the entries expired at its time, never the
	// ones kept for good.
	h.admin(fsm.EncodeRevokeToken(fsm.RevokeToken{ID: "b", ExpiresUnix: 500, TimeUnix: 101}))
	if got := h.f.RevokedTokens(); !slices.Equal(got, []string{"b", "forever"}) {
		t.Fatalf("after pruning: %v", got)
	}
	// Snapshot and restore keep the list, byte for byte.
	data := snapshotBytes(t, h.f)
	g := fsm.New()
	if err := g.Restore(io.NopCloser(bytes.NewReader(data))); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(g.RevokedTokens(), []string{"b", "forever"}) || !bytes.Equal(snapshotBytes(t, g), data) {
		t.Fatalf("restored %v", g.RevokedTokens())
	}
}

// A version 3 snapshot (before revocation) restores with an empty list.
func TestFSM_RestoreVersion3(t *testing.T) {
	h := newHarness(t)
	vid := volume.MustNewID()
	h.commit(commitCmd(vid, 0, 1, pw(1, 1)))
	cur := snapshotBytes(t, h.f)
	// the checkpoint section (v5: 12 bytes when empty), the revoked count
	// (v4) and the checksum
	body := bytes.Clone(cur[:len(cur)-4-12-4])
	binary.BigEndian.PutUint32(body[8:], 3)
	v3 := binary.BigEndian.AppendUint32(body, crc32.Checksum(body, crc32.MakeTable(crc32.Castagnoli)))
	g := fsm.New()
	if err := g.Restore(io.NopCloser(bytes.NewReader(v3))); err != nil {
		t.Fatalf("restore version 3: %v", err)
	}
	if g.Head(vid).LSN != 1 || len(g.RevokedTokens()) != 0 || !bytes.Equal(snapshotBytes(t, g), cur) {
		t.Fatalf("restored v3: head %v revoked %v", g.Head(vid), g.RevokedTokens())
	}
}

func TestFSM_RevokeTokenInvalid(t *testing.T) {
	for name, data := range map[string][]byte{
		"empty id":  fsm.EncodeRevokeToken(fsm.RevokeToken{}),
		"truncated": fsm.EncodeRevokeToken(fsm.RevokeToken{ID: "x"})[:10],
		"trailing":  append(fsm.EncodeRevokeToken(fsm.RevokeToken{ID: "x"}), 0),
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			r, ok := h.apply(data).(*fsm.CommitResult)
			if !ok || !errors.Is(r.Err, fsm.ErrInvalidCommand) || len(h.f.RevokedTokens()) != 0 {
				t.Fatalf("got %#v, want an invalid-command rejection", r)
			}
		})
	}
}
