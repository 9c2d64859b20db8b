package fsm

import (
	"encoding/binary"
	"fmt"
	"maps"
	"slices"
)

// RevokeToken puts a bearer token's ID on the replicated revocation list,
// so every node refuses it once the entry is applied. Entries whose token
// has expired are dropped when a later revocation is applied, at that
// entry's TimeUnix, so every replica prunes the same ones.
type RevokeToken struct {
	// ID is the token's ID (its jti claim). Required, at most 1024 bytes.
	ID string
	// ExpiresUnix is the token's expiry in Unix seconds; 0 keeps the entry
	// for good.
	ExpiresUnix int64
	// TimeUnix is the proposing node's clock, in Unix seconds.
	TimeUnix int64
}

// revokeFixedLen: expires_unix (8) | time_unix (8), then the id.
const revokeFixedLen = 16

// EncodeRevokeToken encodes a revocation.
func EncodeRevokeToken(r RevokeToken) []byte {
	b := []byte{cmdMagic, cmdVersion, kindRevokeToken}
	b = binary.BigEndian.AppendUint64(b, uint64(r.ExpiresUnix))
	b = binary.BigEndian.AppendUint64(b, uint64(r.TimeUnix))
	return appendString(b, cut(r.ID, maxNodeFieldLen))
}

func decodeRevokeToken(body []byte) (*RevokeToken, error) {
	if len(body) < revokeFixedLen {
		return nil, fmt.Errorf("%w: revoke token: %d bytes, want at least %d", ErrInvalidCommand, len(body), revokeFixedLen)
	}
	r := &RevokeToken{ExpiresUnix: int64(binary.BigEndian.Uint64(body)), TimeUnix: int64(binary.BigEndian.Uint64(body[8:]))}
	id, rest, err := readString(body[revokeFixedLen:])
	if err != nil || len(rest) != 0 || id == "" {
		return nil, fmt.Errorf("%w: revoke token: malformed or empty id", ErrInvalidCommand)
	}
	r.ID = id
	return r, nil
}

// applyRevokeToken adds the ID and drops the entries expired at r.TimeUnix.
// The map is replaced, never modified, so a snapshot may keep the old one.
func (s *state) applyRevokeToken(r *RevokeToken) *AdminResult {
	next := make(map[string]int64, len(s.revoked)+1)
	for id, exp := range s.revoked {
		if exp == 0 || exp >= r.TimeUnix {
			next[id] = exp
		}
	}
	if old, ok := next[r.ID]; !ok || (old != 0 && (r.ExpiresUnix == 0 || r.ExpiresUnix > old)) {
		next[r.ID] = r.ExpiresUnix // keep the later expiry
	}
	s.revoked = next
	return &AdminResult{}
}

// TokenRevoked reports whether a token ID is on the revocation list.
func (f *FSM) TokenRevoked(id string) bool {
	f.mu.RLock()
	defer f.mu.RUnlock()
	_, ok := f.st.revoked[id]
	return ok
}

// RevokedTokens returns the revoked token IDs, sorted.
func (f *FSM) RevokedTokens() []string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return slices.Sorted(maps.Keys(f.st.revoked))
}
