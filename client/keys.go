package client

import (
	"encoding/binary"
	"fmt"

	"github.com/graft-cluster/graft/client/store"
	"github.com/graft-cluster/graft/volume"
)

// Store layout (all integers big-endian, so keys sort by vid, then index,
// then LSN):
//
//	meta:    "format" -> storeFormat
//	volumes: vid(16) -> volState (see encodeState)
//	pages:   vid(16) | idx(4) | local LSN(8) -> tag(1) [| page(4096)]
//	commits: vid(16) | local LSN(8) -> page count(4) | graft (portable roaring)
//
// A page version is the value at the greatest local LSN <= the snapshot's
// local LSN; no version means the page was never written (zeros).
const storeFormat = "graft-client-replica-1"

// Page value tags.
const (
	tagPending byte = 0 // changed remotely; bytes not fetched yet
	tagData    byte = 1 // followed by the 4096-byte page
	tagZero    byte = 2 // an all-zero page
)

func pagePrefix(vid volume.ID, idx volume.PageIdx) []byte {
	k := make([]byte, 20, 28)
	copy(k, vid[:])
	binary.BigEndian.PutUint32(k[16:], uint32(idx))
	return k
}

func pageKey(vid volume.ID, idx volume.PageIdx, lsn volume.LSN) []byte {
	return binary.BigEndian.AppendUint64(pagePrefix(vid, idx), uint64(lsn))
}

func parsePageKey(k []byte) (volume.PageIdx, volume.LSN, error) {
	if len(k) != 28 {
		return 0, 0, fmt.Errorf("%w: page key of %d bytes", store.ErrCorrupt, len(k))
	}
	return volume.PageIdx(binary.BigEndian.Uint32(k[16:])), volume.LSN(binary.BigEndian.Uint64(k[20:])), nil
}

func commitKey(vid volume.ID, lsn volume.LSN) []byte {
	return binary.BigEndian.AppendUint64(vid[:], uint64(lsn))
}

func pageValue(data []byte) []byte {
	if volume.IsZeroPage(data) {
		return []byte{tagZero}
	}
	return append([]byte{tagData}, data...)
}

// decodePageValue returns the tag and, for tagData, the page (aliasing v).
func decodePageValue(v []byte) (byte, []byte, error) {
	switch {
	case len(v) == 1 && (v[0] == tagPending || v[0] == tagZero):
		return v[0], nil, nil
	case len(v) == 1+volume.PageSize && v[0] == tagData:
		return tagData, v[1:], nil
	}
	return 0, nil, fmt.Errorf("%w: page value of %d bytes", store.ErrCorrupt, len(v))
}

// volState is a volume's durable state.
type volState struct {
	LocalLSN  volume.LSN // the latest local snapshot (0: empty)
	PageCount uint32     // page count at LocalLSN
	// SyncedLocal is the local LSN that equals remote RemoteLSN; local
	// commits in (SyncedLocal, LocalLSN] are not pushed yet.
	SyncedLocal volume.LSN
	RemoteLSN   volume.LSN
	Status      Status
	Push        *pendingPush // a push recorded before sending; nil when none
}

// pendingPush is the record of a push whose outcome is not known yet. A
// resend rebuilds the same commit from the pages at UpTo and checks Hash.
type pendingPush struct {
	Base      volume.LSN // remote base LSN
	UpTo      volume.LSN // local LSN pushed
	PageCount uint32
	Hash      volume.Hash
	Graft     volume.PageSet
}

const stateVersion = 1

func encodeState(s volState) ([]byte, error) {
	b := []byte{stateVersion}
	b = binary.BigEndian.AppendUint64(b, uint64(s.LocalLSN))
	b = binary.BigEndian.AppendUint32(b, s.PageCount)
	b = binary.BigEndian.AppendUint64(b, uint64(s.SyncedLocal))
	b = binary.BigEndian.AppendUint64(b, uint64(s.RemoteLSN))
	b = append(b, byte(s.Status))
	if s.Push == nil {
		return append(b, 0), nil
	}
	b = append(b, 1)
	p := s.Push
	b = binary.BigEndian.AppendUint64(b, uint64(p.Base))
	b = binary.BigEndian.AppendUint64(b, uint64(p.UpTo))
	b = binary.BigEndian.AppendUint32(b, p.PageCount)
	b = append(b, p.Hash[:]...)
	g, err := p.Graft.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encode push graft: %w", err)
	}
	return append(b, g...), nil
}

func decodeState(b []byte) (volState, error) {
	var s volState
	const fixed = 1 + 8 + 4 + 8 + 8 + 1 + 1
	if len(b) < fixed || b[0] != stateVersion {
		return s, fmt.Errorf("%w: volume state of %d bytes", store.ErrCorrupt, len(b))
	}
	s.LocalLSN = volume.LSN(binary.BigEndian.Uint64(b[1:]))
	s.PageCount = binary.BigEndian.Uint32(b[9:])
	s.SyncedLocal = volume.LSN(binary.BigEndian.Uint64(b[13:]))
	s.RemoteLSN = volume.LSN(binary.BigEndian.Uint64(b[21:]))
	s.Status = Status(b[29])
	if s.Status > StatusInterruptedPush || s.SyncedLocal > s.LocalLSN {
		return s, fmt.Errorf("%w: volume state status %d, synced %d > local %d", store.ErrCorrupt, s.Status, s.SyncedLocal, s.LocalLSN)
	}
	switch b[30] {
	case 0:
		if len(b) != fixed {
			return s, fmt.Errorf("%w: volume state of %d bytes", store.ErrCorrupt, len(b))
		}
		return s, nil
	case 1:
	default:
		return s, fmt.Errorf("%w: volume state push flag %d", store.ErrCorrupt, b[30])
	}
	r := b[fixed:]
	if len(r) < 8+8+4+32 {
		return s, fmt.Errorf("%w: pending push of %d bytes", store.ErrCorrupt, len(r))
	}
	p := &pendingPush{
		Base:      volume.LSN(binary.BigEndian.Uint64(r)),
		UpTo:      volume.LSN(binary.BigEndian.Uint64(r[8:])),
		PageCount: binary.BigEndian.Uint32(r[16:]),
	}
	copy(p.Hash[:], r[20:52])
	g, err := volume.DecodePageSet(r[52:])
	if err != nil {
		return s, fmt.Errorf("%w: pending push graft: %w", store.ErrCorrupt, err)
	}
	p.Graft = g
	s.Push = p
	return s, nil
}

func encodeCommit(pageCount uint32, g volume.PageSet) ([]byte, error) {
	gb, err := g.MarshalBinary()
	if err != nil {
		return nil, fmt.Errorf("encode commit graft: %w", err)
	}
	return append(binary.BigEndian.AppendUint32(nil, pageCount), gb...), nil
}

func decodeCommit(b []byte) (uint32, volume.PageSet, error) {
	if len(b) < 4 {
		return 0, volume.PageSet{}, fmt.Errorf("%w: commit of %d bytes", store.ErrCorrupt, len(b))
	}
	g, err := volume.DecodePageSet(b[4:])
	if err != nil {
		return 0, g, fmt.Errorf("%w: commit graft: %w", store.ErrCorrupt, err)
	}
	return binary.BigEndian.Uint32(b), g, nil
}
