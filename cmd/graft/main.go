// Command graft is the one binary of the graft commit cluster: it runs
// cluster members (node), a local three-node cluster (dev), and the client,
// admin and benchmark commands. It is thin: flags map into library Configs.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	if err != nil {
		var ee exitError
		_, bare := err.(exitError) // the command already said why
		if !errors.Is(err, flag.ErrHelp) && !bare {
			fmt.Fprintln(os.Stderr, "graft:", err)
		}
		var ce codedError
		switch {
		case errors.As(err, &ce):
			os.Exit(ce.code)
		case errors.As(err, &ee):
			os.Exit(int(ee))
		}
		os.Exit(1)
	}
}

// codedError is an error with a specific exit status.
type codedError struct {
	code int
	err  error
}

func (e codedError) Error() string { return e.err.Error() }
func (e codedError) Unwrap() error { return e.err }

// exitError carries a specific exit status.
type exitError int

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", int(e)) }

// command is one subcommand.
type command struct {
	summary string
	run     func(ctx context.Context, args []string, stdout, stderr io.Writer) error
}

func commands() map[string]command {
	return map[string]command{
		"node":    {"run a cluster member", runNode},
		"dev":     {"run a local three-node cluster on loopback", runDev},
		"edge":    {"serve a read-through cache of the cluster near clients", runEdge},
		"volume":  {"create, commit to, read and inspect volumes", runVolume},
		"cluster": {"inspect and change cluster membership", runCluster},
		"bench":   {"measure commit latency and the disk's fsync floor", runBench},
		"s3":      {"serve the embedded S3-compatible store (graft dev's) on its own", runS3},
		"jepsen":  {"run a consistency test (workload + faults) against a fresh cluster", runJepsen},
		"sql":     {"run SQL on a SQLite database stored in a volume (a lazy local replica)", runSQL},
		"token":   {"issue, revoke and make keys for bearer tokens", runToken},
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	cmds := commands()
	usage := func(w io.Writer) {
		fmt.Fprintln(w, "usage: graft <command> [flags]\n\ncommands:")
		names := make([]string, 0, len(cmds))
		for n := range cmds {
			names = append(names, n)
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(w, "  %-8s %s\n", n, cmds[n].summary)
		}
		fmt.Fprintln(w, "\nRun 'graft <command> --help' for a command's flags.")
	}
	if len(args) == 0 {
		usage(stderr)
		return flag.ErrHelp
	}
	switch args[0] {
	case "-h", "--help", "help":
		usage(stdout)
		return nil
	}
	if args[0] == "jepsen-sqlite-client" { // hidden: the sqlite-bank workload's client process
		return runJepsenSQLiteClient(ctx, args[1:], stdout, stderr)
	}
	c, ok := cmds[args[0]]
	if !ok {
		usage(stderr)
		return fmt.Errorf("unknown command %q", args[0])
	}
	if err := c.run(ctx, args[1:], stdout, stderr); !errors.Is(err, errHelpShown) {
		return err
	}
	return nil
}

// subcommandNotes are printed under a command's list of subcommands.
var subcommandNotes = map[string]string{"cluster": rollingRestartHelp}

// subcommands dispatches "graft X <sub>" to a table of functions.
func subcommands(ctx context.Context, name string, args []string, stdout, stderr io.Writer, subs map[string]command) error {
	usage := func(w io.Writer) {
		fmt.Fprintf(w, "usage: graft %s <command> [flags]\n\ncommands:\n", name)
		names := make([]string, 0, len(subs))
		width := 9
		for n := range subs {
			names = append(names, n)
			width = max(width, len(n))
		}
		sort.Strings(names)
		for _, n := range names {
			fmt.Fprintf(w, "  %-*s %s\n", width, n, subs[n].summary)
		}
		if note := subcommandNotes[name]; note != "" {
			fmt.Fprint(w, note)
		}
	}
	if len(args) == 0 {
		usage(stderr)
		return flag.ErrHelp
	}
	if args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		usage(stdout)
		return nil
	}
	c, ok := subs[args[0]]
	if !ok {
		usage(stderr)
		return fmt.Errorf("unknown %s command %q", name, args[0])
	}
	return c.run(ctx, args[1:], stdout, stderr)
}

// newFlags returns a FlagSet whose --help prints to stdout and returns
// flag.ErrHelp, and whose errors go to stderr.
func newFlags(name, usage string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: graft %s\n\nflags:\n", usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlags parses args, printing help to stdout for --help.
func parseFlags(fs *flag.FlagSet, args []string, stdout io.Writer) error {
	for _, a := range args {
		if a == "-h" || a == "--help" || a == "-help" {
			fs.SetOutput(stdout)
			fs.Usage()
			return errHelpShown
		}
		if a == "--" {
			break
		}
	}
	return fs.Parse(args)
}

// errHelpShown stops a command after --help, with exit status 0.
var errHelpShown = errors.New("help shown")
