// Package auth owns graft's bearer tokens: Ed25519-signed JWTs carrying
// scopes (read, write, admin), a volume ID prefix (or "*"), an expiry and
// an ID; their issuing and verification; the Connect interceptor every node
// and edge runs before any work; and the propagation of a caller's
// credential on the calls a node or edge makes for it (forwarding).
//
// Invariants: a token is never logged nor echoed in an error; a denial is
// logged once, with the token's ID, the method and the volume; an unknown
// procedure needs admin (fail closed). Scopes nest: admin implies write,
// write implies read. It imports the api package (procedure names) and
// golang-jwt/jwt/v5, never cluster or fsm.
package auth

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/hashicorp/golang-lru/v2"
)

// Errors returned by the package. The verification errors are what the
// interceptor answers as unauthenticated, by name.
var (
	// ErrNoToken means the request carried no bearer token.
	ErrNoToken = errors.New("auth: no token")
	// ErrInvalidToken means the token did not parse or verify.
	ErrInvalidToken = errors.New("auth: invalid token")
	// ErrExpired means the token's expiry has passed.
	ErrExpired = errors.New("auth: token expired")
	// ErrRevoked means the token's ID is on the revocation list.
	ErrRevoked = errors.New("auth: token revoked")
	// ErrBadScope means a scope name is not read, write or admin.
	ErrBadScope = errors.New("auth: unknown scope")
	// ErrBadKey means a key file holds no usable Ed25519 key.
	ErrBadKey = errors.New("auth: not an Ed25519 key")
)

// Scope is a permission level. Higher scopes imply lower ones.
type Scope int

// Scopes, lowest first. ScopePublic marks a procedure that needs no
// token; no token carries it.
const (
	ScopePublic Scope = iota
	ScopeRead
	ScopeWrite
	ScopeAdmin
)

func (s Scope) String() string {
	switch s {
	case ScopePublic:
		return "public"
	case ScopeRead:
		return "read"
	case ScopeWrite:
		return "write"
	case ScopeAdmin:
		return "admin"
	}
	return fmt.Sprintf("scope(%d)", int(s))
}

// ParseScope parses read, write or admin.
func ParseScope(s string) (Scope, error) {
	switch strings.TrimSpace(s) {
	case "read":
		return ScopeRead, nil
	case "write":
		return ScopeWrite, nil
	case "admin":
		return ScopeAdmin, nil
	}
	return 0, fmt.Errorf("%w %q: want read, write or admin", ErrBadScope, s)
}

// Claims are a token's claims: "scopes", "vol" (a volume ID prefix, "*"
// for every volume), and the registered exp, iat and jti.
type Claims struct {
	Scopes  []string `json:"scopes"`
	Volumes string   `json:"vol"`
	jwt.RegisteredClaims
}

// Allows reports whether the claims grant scope s.
func (c *Claims) Allows(s Scope) bool {
	for _, name := range c.Scopes {
		if have, err := ParseScope(name); err == nil && have >= s {
			return true
		}
	}
	return false
}

// CoversVolume reports whether the claims' volume prefix matches vid (the
// volume ID as sent).
func (c *Claims) CoversVolume(vid string) bool {
	return c.Volumes == "*" || (c.Volumes != "" && strings.HasPrefix(vid, c.Volumes))
}

// IssueOptions describe a token to issue.
type IssueOptions struct {
	Scopes  []Scope
	Volumes string        // a volume ID prefix, or "*"
	TTL     time.Duration // > 0
	ID      string        // the jti; empty: 16 random bytes, hex
	Now     time.Time     // zero: time.Now()
}

// Issue signs a token with key.
func Issue(key ed25519.PrivateKey, o IssueOptions) (token string, c Claims, err error) {
	if len(o.Scopes) == 0 {
		return "", c, fmt.Errorf("%w: a token needs at least one scope", ErrBadScope)
	}
	if o.Volumes == "" {
		return "", c, errors.New("auth: a token needs a volume prefix (or *)")
	}
	if o.TTL <= 0 {
		return "", c, errors.New("auth: a token needs a positive ttl")
	}
	if o.Now.IsZero() {
		o.Now = time.Now()
	}
	if o.ID == "" {
		var b [16]byte
		_, _ = rand.Read(b[:])
		o.ID = hex.EncodeToString(b[:])
	}
	for _, s := range o.Scopes {
		if !slices.Contains(c.Scopes, s.String()) {
			c.Scopes = append(c.Scopes, s.String())
		}
	}
	c.Volumes = o.Volumes
	c.ID = o.ID
	c.IssuedAt = jwt.NewNumericDate(o.Now)
	c.ExpiresAt = jwt.NewNumericDate(o.Now.Add(o.TTL))
	token, err = jwt.NewWithClaims(jwt.SigningMethodEdDSA, &c).SignedString(key)
	if err != nil {
		return "", c, fmt.Errorf("auth: sign token: %w", err)
	}
	return token, c, nil
}

// verifiedCacheSize bounds the tokens whose verification is remembered.
const verifiedCacheSize = 4096

// Verifier checks tokens against a public key. It remembers the claims of
// the tokens it verified (up to 4096, least recently used out), so a
// client's every call costs a map lookup and an expiry check rather than
// an Ed25519 verification; revocation is checked by the caller per call.
type Verifier struct {
	key    ed25519.PublicKey
	parser *jwt.Parser
	now    func() time.Time
	cache  *lru.Cache[string, *Claims]
}

// NewVerifier returns a Verifier of tokens signed by key's private half.
// now, when not nil, replaces the clock (tests).
func NewVerifier(key ed25519.PublicKey, now func() time.Time) *Verifier {
	if now == nil {
		now = time.Now
	}
	opts := []jwt.ParserOption{jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}), jwt.WithExpirationRequired(), jwt.WithTimeFunc(now)}
	cache, _ := lru.New[string, *Claims](verifiedCacheSize) // only fails for a size <= 0
	return &Verifier{key: key, parser: jwt.NewParser(opts...), now: now, cache: cache}
}

// Verify parses and checks a token: signature, algorithm, expiry, and an
// ID present. Errors are ErrInvalidToken or ErrExpired, never the token.
// The returned claims are shared: read them, never modify them.
func (v *Verifier) Verify(token string) (*Claims, error) {
	if c, ok := v.cache.Get(token); ok {
		if v.now().Before(c.ExpiresAt.Time) {
			return c, nil
		}
		v.cache.Remove(token)
		return c, ErrExpired
	}
	c, err := v.verify(token)
	if err == nil {
		v.cache.Add(token, c)
	}
	return c, err
}

func (v *Verifier) verify(token string) (*Claims, error) {
	var c Claims
	_, err := v.parser.ParseWithClaims(token, &c, func(*jwt.Token) (any, error) { return v.key, nil })
	switch {
	case errors.Is(err, jwt.ErrTokenExpired):
		return &c, ErrExpired
	case err != nil:
		return nil, ErrInvalidToken
	case c.ID == "":
		return nil, fmt.Errorf("%w: no token id", ErrInvalidToken)
	}
	return &c, nil
}

// GenerateKey writes a new Ed25519 private key (PKCS#8 PEM, mode 0600) to
// path and its public key (PKIX PEM) to path+".pub".
func GenerateKey(path string) (ed25519.PrivateKey, error) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("auth: generate key: %w", err)
	}
	pk, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return nil, err
	}
	pp, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return nil, err
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pk}), 0o600); err != nil {
		return nil, fmt.Errorf("auth: write key: %w", err)
	}
	if err := os.WriteFile(path+".pub", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pp}), 0o644); err != nil {
		return nil, fmt.Errorf("auth: write public key: %w", err)
	}
	return priv, nil
}

// LoadPrivateKey reads a PEM Ed25519 private key.
func LoadPrivateKey(path string) (ed25519.PrivateKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: read key: %w", err)
	}
	k, err := jwt.ParseEdPrivateKeyFromPEM(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %w", ErrBadKey, path, err)
	}
	priv, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrBadKey, path)
	}
	return priv, nil
}

// LoadPublicKey reads a PEM Ed25519 public key, or derives it from a
// private key file (so a node may be given either).
func LoadPublicKey(path string) (ed25519.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: read key: %w", err)
	}
	if k, err := jwt.ParseEdPublicKeyFromPEM(b); err == nil {
		if pub, ok := k.(ed25519.PublicKey); ok {
			return pub, nil
		}
	}
	priv, err := LoadPrivateKey(path)
	if err != nil {
		return nil, err
	}
	return priv.Public().(ed25519.PublicKey), nil
}
