package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net/http"
	"slices"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/tlsutil"
	"github.com/graft-cluster/graft/volume"
)

// clientCmd is the part every client command (cluster, volume, token
// revoke) shares: a flag set with the client flags (--endpoint, --ca,
// --token, --json, --timeout; with reads also --consistency and
// --min-lsn), its parsing, the call under --timeout with a client built
// from the flags, and the result printed as text or --json. A command
// adds its own flags to fs before parsing.
type clientCmd struct {
	clientFlags
	name   string // "cluster add": the prefix of argument errors
	fs     *flag.FlagSet
	stdout io.Writer
	args   []string // the positional arguments parse found
}

// newClientCmd returns the command name with the client flags registered.
func newClientCmd(name, usage string, reads bool, stdout, stderr io.Writer) *clientCmd {
	cc := &clientCmd{name: name, fs: newFlags(name, usage, stderr), stdout: stdout}
	cc.register(cc.fs, reads)
	return cc
}

// parse parses args; --help prints the usage and stops the command.
// Flags may come before, between and after the positional arguments (as
// for the volume commands: `cluster remove n1 --endpoint URL`); after "--"
// everything is positional. The positional arguments are cc.args.
func (cc *clientCmd) parse(args []string) error {
	var tail []string
	if i := slices.Index(args, "--"); i >= 0 {
		args, tail = args[:i], args[i+1:]
	}
	cc.args = nil
	for {
		if err := parseFlags(cc.fs, args, cc.stdout); err != nil {
			return err
		}
		rest := cc.fs.Args()
		if len(rest) == 0 {
			break
		}
		cc.args = append(cc.args, rest[0])
		args = rest[1:]
	}
	cc.args = append(cc.args, tail...)
	return nil
}

// arg is the i-th positional argument ("" if there are fewer).
func (cc *clientCmd) arg(i int) string {
	if i < len(cc.args) {
		return cc.args[i]
	}
	return ""
}

// parseN parses args and wants exactly n positional arguments, named
// by want ("ID RAFT_ADDR API_ADDR"); with n == 0, none.
func (cc *clientCmd) parseN(args []string, n int, want string) error {
	if err := cc.parse(args); err != nil {
		return err
	}
	switch {
	case n == 0 && len(cc.args) > 0:
		return fmt.Errorf("%s: unexpected arguments %q", cc.name, cc.args)
	case len(cc.args) != n:
		return fmt.Errorf("%s: want %s, got %q", cc.name, want, cc.args)
	}
	return nil
}

// parseVID parses args and the one volume ID among them.
func (cc *clientCmd) parseVID(args []string) (volume.ID, error) {
	if helpRequested(args) {
		return volume.ID{}, cc.parse(args)
	}
	return parseWithVID(cc.fs, args)
}

// parseRead is parseVID and the read options of --consistency and --min-lsn.
func (cc *clientCmd) parseRead(args []string) (volume.ID, client.ReadOptions, error) {
	vid, err := cc.parseVID(args)
	if err != nil {
		return vid, client.ReadOptions{}, err
	}
	ro, err := cc.readOptions()
	return vid, ro, err
}

// call runs fn under --timeout with a client of the flags.
func (cc *clientCmd) call(ctx context.Context, fn func(ctx context.Context, c *client.Client) error) error {
	ctx, cancel := context.WithTimeout(ctx, cc.timeout)
	defer cancel()
	c, err := cc.client()
	if err != nil {
		return err
	}
	return fn(ctx, c)
}

// httpClient is a plain HTTP client (for /readyz) that verifies https://
// endpoints with --ca, like the client's calls.
func (c *clientFlags) httpClient() (*http.Client, error) {
	if c.ca == "" {
		return http.DefaultClient, nil
	}
	pool, err := tlsutil.LoadPool(c.ca)
	if err != nil {
		return nil, err
	}
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}, nil
}

// print prints v as JSON with --json, else the human text.
func (cc *clientCmd) print(v any, human string) error {
	return printResult(cc.stdout, cc.json, v, human)
}
