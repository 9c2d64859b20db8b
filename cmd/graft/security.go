package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"connectrpc.com/connect"

	graftv1 "github.com/graft-cluster/graft/api/graft/v1"
	"github.com/graft-cluster/graft/auth"
	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/tlsutil"
)

// TokenEnv names the environment variable that is the default --token of
// the client commands.
const TokenEnv = "GRAFT_TOKEN"

// securityFlags are a server's TLS and token flags (graft node, graft edge).
type securityFlags struct {
	tls     tlsutil.Files
	authKey string
}

func (s *securityFlags) register(fs flagSet, ca bool) {
	fs.StringVar(&s.tls.Cert, "tls-cert", s.tls.Cert, "PEM certificate to serve HTTPS (HTTP/2 via ALPN, HTTP/1.1 too) with; reloaded on SIGHUP")
	fs.StringVar(&s.tls.Key, "tls-key", s.tls.Key, "PEM private key of --tls-cert; reloaded on SIGHUP")
	if ca {
		fs.StringVar(&s.tls.CA, "tls-ca", s.tls.CA, "PEM CA bundle members' certificates must chain to (mutual TLS on Raft and forwarding); reloaded on SIGHUP")
	}
	fs.StringVar(&s.authKey, "auth-key", s.authKey, "Ed25519 key file (public, or the private one) to verify bearer tokens with; unset: no authentication")
}

// load returns the TLS holder (nil when no TLS flag is set) and the token
// verifier (nil without --auth-key).
func (s *securityFlags) load() (*tlsutil.Holder, *auth.Verifier, error) {
	var h *tlsutil.Holder
	if s.tls.Enabled() {
		var err error
		if h, err = tlsutil.Load(s.tls); err != nil {
			return nil, nil, err
		}
	}
	if s.authKey == "" {
		return h, nil, nil
	}
	pub, err := auth.LoadPublicKey(s.authKey)
	if err != nil {
		return nil, nil, err
	}
	return h, auth.NewVerifier(pub, nil), nil
}

// reloadOnHUP re-reads h's files on every SIGHUP until ctx ends; a
// failed reload keeps the old material and says why.
func reloadOnHUP(ctx context.Context, h *tlsutil.Holder, log *slog.Logger) {
	if h == nil {
		return
	}
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGHUP)
	go func() {
		defer signal.Stop(ch)
		for {
			select {
			case <-ctx.Done():
				return
			case <-ch:
				if err := h.Reload(); err != nil {
					log.Error("SIGHUP: TLS reload failed; keeping the previous certificate", "err", err)
				} else {
					log.Info("SIGHUP: TLS certificate, key and CA reloaded", "cert", h.Files().Cert)
				}
			}
		}
	}()
}

// clientSecurity returns the client options of --ca and --token.
func clientSecurity(caFile, token string) ([]client.Option, error) {
	var opts []client.Option
	if caFile != "" {
		pool, err := tlsutil.LoadPool(caFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, client.WithRootCAs(pool))
	}
	if token = strings.TrimSpace(token); token != "" {
		opts = append(opts, client.WithToken(token))
	}
	return opts, nil
}

func runToken(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	return subcommands(ctx, "token", args, stdout, stderr, map[string]command{
		"issue":  {"sign a bearer token and print it: token issue --scope write --volumes PREFIX --ttl 24h --key FILE", tokenIssue},
		"revoke": {"revoke a token by its ID on every node (needs an admin token): token revoke ID", tokenRevoke},
		"keygen": {"write a new Ed25519 signing key to FILE and its public key to FILE.pub: token keygen --key FILE", tokenKeygen},
	})
}

func tokenIssue(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("token issue", "token issue --scope read|write|admin[,...] --volumes PREFIX|* --ttl 24h --key FILE [--id ID]", stderr)
	scopes := fs.String("scope", "", "scopes: read, write, admin (each implies the ones before it); comma-separated")
	volumes := fs.String("volumes", "", "the volume ID prefix the token covers, or * for every volume")
	ttl := fs.Duration("ttl", 24*time.Hour, "how long the token is valid")
	key := fs.String("key", "", "the Ed25519 private key file (graft token keygen, or graft dev --auth's DIR/auth/key)")
	id := fs.String("id", "", "the token's ID (jti), used to revoke it; default: random")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if *key == "" || *scopes == "" || *volumes == "" {
		return errors.New("token issue: --key, --scope and --volumes are required")
	}
	var ss []auth.Scope
	for _, s := range strings.Split(*scopes, ",") {
		sc, err := auth.ParseScope(s)
		if err != nil {
			return err
		}
		ss = append(ss, sc)
	}
	priv, err := auth.LoadPrivateKey(*key)
	if err != nil {
		return err
	}
	tok, c, err := auth.Issue(priv, auth.IssueOptions{Scopes: ss, Volumes: *volumes, TTL: *ttl, ID: *id})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "token %s: scopes %s, volumes %q, expires %s\n", c.ID, strings.Join(c.Scopes, ","), c.Volumes, c.ExpiresAt.UTC().Format(time.RFC3339))
	_, err = fmt.Fprintln(stdout, tok)
	return err
}

func tokenKeygen(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("token keygen", "token keygen --key FILE", stderr)
	key := fs.String("key", "", "where to write the private key (FILE.pub gets the public key, for the nodes' --auth-key)")
	if err := parseFlags(fs, args, stdout); err != nil {
		return err
	}
	if *key == "" {
		return errors.New("token keygen: --key is required")
	}
	if _, err := os.Stat(*key); err == nil {
		return fmt.Errorf("token keygen: %s exists; not overwriting a key", *key)
	}
	if _, err := auth.GenerateKey(*key); err != nil {
		return err
	}
	_, err := fmt.Fprintf(stdout, "private key: %s (keep it secret: it signs tokens)\npublic key:  %s.pub (give it to nodes and edges as --auth-key)\n", *key, *key)
	return err
}

func tokenRevoke(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cc := newClientCmd("token revoke", "token revoke ID [--expires UNIX|RFC3339] [--endpoint URL] [--token ADMIN_TOKEN]", false, stdout, stderr)
	expires := cc.fs.String("expires", "", "the token's expiry (Unix seconds or RFC 3339): the entry is dropped after it; default: kept for good")
	if err := cc.parse(args); err != nil {
		return err
	}
	switch len(cc.args) {
	case 0:
		return errors.New("token revoke: want the token ID")
	case 1:
	default:
		return fmt.Errorf("token revoke: want one token ID, got %q", cc.args)
	}
	id := cc.args[0]
	var exp int64
	if *expires != "" {
		if n, err := strconv.ParseInt(*expires, 10, 64); err == nil {
			exp = n
		} else if t, err := time.Parse(time.RFC3339, *expires); err == nil {
			exp = t.Unix()
		} else {
			return fmt.Errorf("token revoke: --expires %q: want Unix seconds or RFC 3339", *expires)
		}
	}
	return cc.call(ctx, func(ctx context.Context, c *client.Client) error {
		if _, err := c.Cluster(0).RevokeToken(ctx, connect.NewRequest(&graftv1.RevokeTokenRequest{Id: id, ExpiresUnix: exp})); err != nil {
			return err
		}
		return cc.print(map[string]string{"revoked": id}, "revoked token "+id+" on every node")
	})
}
