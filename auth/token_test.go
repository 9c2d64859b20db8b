package auth_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/graft-cluster/graft/auth"
)

func TestVerifier_Verify(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	_, otherPriv, _ := ed25519.GenerateKey(rand.Reader)
	now := time.Unix(1_800_000_000, 0)
	v := auth.NewVerifier(pub, func() time.Time { return now })
	issue := func(k ed25519.PrivateKey, ttl time.Duration, at time.Time) string {
		tok, _, err := auth.Issue(k, auth.IssueOptions{Scopes: []auth.Scope{auth.ScopeWrite}, Volumes: "abc", TTL: ttl, ID: "t1", Now: at})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	good := issue(priv, time.Hour, now)
	c, err := v.Verify(good)
	if err != nil || c.ID != "t1" || c.Volumes != "abc" || !c.Allows(auth.ScopeRead) || !c.Allows(auth.ScopeWrite) || c.Allows(auth.ScopeAdmin) {
		t.Fatalf("good token: %+v %v", c, err)
	}
	if !c.CoversVolume("abcdef") || c.CoversVolume("xabc") {
		t.Fatal("volume prefix")
	}
	for name, tc := range map[string]struct {
		tok  string
		want error
	}{
		"expired":   {issue(priv, time.Hour, now.Add(-2*time.Hour)), auth.ErrExpired},
		"other key": {issue(otherPriv, time.Hour, now), auth.ErrInvalidToken},
		"garbage":   {"a.b.c", auth.ErrInvalidToken},
		"tampered":  {good[:len(good)-4] + "AAAA", auth.ErrInvalidToken},
		"alg none":  {"eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + strings.Split(good, ".")[1] + ".", auth.ErrInvalidToken},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := v.Verify(tc.tok); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestGenerateKey_LoadBoth(t *testing.T) {
	path := filepath.Join(t.TempDir(), "key")
	priv, err := auth.GenerateKey(path)
	if err != nil {
		t.Fatal(err)
	}
	lp, err := auth.LoadPrivateKey(path)
	if err != nil || !lp.Equal(priv) {
		t.Fatalf("load private: %v", err)
	}
	for _, p := range []string{path, path + ".pub"} {
		pub, err := auth.LoadPublicKey(p)
		if err != nil || !pub.Equal(priv.Public()) {
			t.Fatalf("load public from %s: %v", p, err)
		}
	}
	if _, err := auth.LoadPrivateKey(path + ".pub"); !errors.Is(err, auth.ErrBadKey) {
		t.Fatalf("public key as private: %v", err)
	}
}

func TestScopeFor(t *testing.T) {
	for proc, want := range map[string]auth.Scope{
		"/graft.v1.VolumeService/Commit":             auth.ScopeWrite,
		"/graft.v1.VolumeService/ReadPages":          auth.ScopeRead,
		"/graft.v1.ClusterService/Status":            auth.ScopeRead,
		"/graft.v1.ClusterService/RemoveNode":        auth.ScopeAdmin,
		"/graft.v1.ClusterService/DeleteVolume":      auth.ScopeAdmin,
		"/graft.v1.ClusterService/SomethingNew":      auth.ScopeAdmin, // fail closed
		"/graft.v1.ClusterService/ListRevokedTokens": auth.ScopePublic,
	} {
		if got := auth.ScopeFor(proc); got != want {
			t.Errorf("%s: %v, want %v", proc, got, want)
		}
	}
}

// A token verified once is remembered, but its expiry still counts.
func TestVerifier_CachedTokenExpires(t *testing.T) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	now := time.Unix(1_800_000_000, 0)
	v := auth.NewVerifier(pub, func() time.Time { return now })
	tok, _, err := auth.Issue(priv, auth.IssueOptions{Scopes: []auth.Scope{auth.ScopeRead}, Volumes: "*", TTL: time.Minute, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if _, err := v.Verify(tok); err != nil {
			t.Fatal(err)
		}
	}
	now = now.Add(2 * time.Minute)
	if _, err := v.Verify(tok); !errors.Is(err, auth.ErrExpired) {
		t.Fatalf("cached token past its expiry: %v", err)
	}
}

func BenchmarkVerifier_Verify(b *testing.B) {
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	tok, _, _ := auth.Issue(priv, auth.IssueOptions{Scopes: []auth.Scope{auth.ScopeWrite}, Volumes: "*", TTL: time.Hour})
	for _, cached := range []bool{false, true} {
		b.Run(map[bool]string{false: "cold", true: "cached"}[cached], func(b *testing.B) {
			v := auth.NewVerifier(pub, nil)
			for b.Loop() {
				if !cached {
					v = auth.NewVerifier(pub, nil)
				}
				if _, err := v.Verify(tok); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
