package main_test

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// A doc-test block of README.md: a ```sh block of the "Try it" section
// preceded by a marker comment saying what the block needs:
//
//	<!-- doc-test: cluster running -->   graft dev runs (the test starts it)
//	<!-- doc-test: cluster stopped -->   graft dev was stopped, as by Ctrl-C
//
// In a block, a line `# => TEXT`, or a comment `  # => TEXT` ending a
// command line, says that the output since the previous such check
// contains TEXT ($VARIABLES expand).
type docBlock struct {
	line    int // README line of the opening fence
	stopped bool
	text    string
}

const readmeSection = "## Try it"

// readmeBlocks extracts the doc-test blocks of the README's "Try it"
// section.
func readmeBlocks(t *testing.T, readme string) []docBlock {
	t.Helper()
	lines := strings.Split(readme, "\n")
	var blocks []docBlock
	in, marker := false, ""
	for i := 0; i < len(lines); i++ {
		l := strings.TrimSpace(lines[i])
		switch {
		case l == readmeSection:
			in = true
			continue
		case !in:
			continue
		case strings.HasPrefix(l, "## "):
			in = false
			continue
		case strings.HasPrefix(l, "<!-- doc-test"):
			marker = l
			continue
		case l == "":
			continue
		}
		if marker == "" {
			continue
		}
		if l != "```sh" {
			t.Fatalf("README.md:%d: %s is not followed by a ```sh block", i+1, marker)
		}
		b := docBlock{line: i + 1}
		switch marker {
		case "<!-- doc-test: cluster running -->":
		case "<!-- doc-test: cluster stopped -->":
			b.stopped = true
		default:
			t.Fatalf("README.md:%d: unknown marker %s", i+1, marker)
		}
		marker = ""
		var body []string
		for i++; i < len(lines) && strings.TrimSpace(lines[i]) != "```"; i++ {
			body = append(body, lines[i])
		}
		if i == len(lines) {
			t.Fatalf("README.md:%d: the block never ends", b.line)
		}
		b.text = strings.Join(body, "\n")
		blocks = append(blocks, b)
	}
	return blocks
}

// loopback ports in the README: the `make dev` defaults.
var readmePort = regexp.MustCompile(`127\.0\.0\.1(:|%3A)(7\d\d\d)\b`)

// docScript turns a block into a bash script: the README's ports become
// the test cluster's, each `# =>` becomes a check, and the variables the
// block sets are saved for the next block.
func docScript(t *testing.T, b docBlock, base int, state, out string) (script string, checks int) {
	t.Helper()
	ports := map[string]int{"7000": base, "7001": base + 1, "7002": base + 2, "7003": base + 3, "7300": base + 300}
	text := readmePort.ReplaceAllStringFunc(b.text, func(m string) string {
		sub := readmePort.FindStringSubmatch(m)
		p, ok := ports[sub[2]]
		if !ok {
			t.Fatalf("README.md block at line %d uses port %s, which the doc test does not map", b.line, sub[2])
		}
		return "127.0.0.1" + sub[1] + strconv.Itoa(p)
	})
	var s strings.Builder
	fmt.Fprintf(&s, `set -euo pipefail
__doc_vars=$(compgen -v)
__doc_pos=0
__expect() { # the output since the previous check contains $1
	local got
	got=$(tail -c +$((__doc_pos + 1)) %[2]q | tr -d '\0')
	__doc_pos=$(stat -c %%s %[2]q)
	if [[ "$got" != *"$1"* ]]; then
		printf 'doc test: README.md line %%s: want output containing %%q, got %%q\n' "$2" "$1" "$got" >&2
		exit 1
	fi
}
if [[ -f %[1]q ]]; then source %[1]q; fi
`, state, out)
	for i, l := range strings.Split(text, "\n") {
		line := b.line + 1 + i
		want, isCheck := strings.CutPrefix(strings.TrimSpace(l), "# => ")
		if !isCheck {
			var cmd string
			if cmd, want, isCheck = strings.Cut(l, "  # => "); isCheck && strings.TrimSpace(cmd) == "" {
				isCheck = false
			}
		}
		fmt.Fprintf(&s, "%s\n", l)
		if isCheck {
			want = strings.TrimSpace(want)
			esc := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "`", "\\`").Replace(want)
			fmt.Fprintf(&s, "__expect \"%s\" %d\n", esc, line)
			checks++
		}
	}
	// Save what the block set (not bash's own variables) for the next one.
	fmt.Fprintf(&s, `for __v in $(compgen -v); do
	[[ $__v == __* ]] || grep -qxF "$__v" <<<"$__doc_vars" || declare -p "$__v"
done >%q
`, state)
	return s.String(), checks
}

// TestProcesses_READMETryIt runs the README's "Try it" blocks as a user
// would: graft dev runs while the "cluster running" blocks run, then it is
// stopped (SIGINT, as Ctrl-C) before the "cluster stopped" ones. Every
// command must succeed (set -euo pipefail) and print what its `# =>`
// comment says. bin/graft is the test's binary; the README's ports
// (7000-7003, 7300) are mapped to free ones, and $GRAFT_ENDPOINT points
// the commands without --endpoint at the test's node 1.
func TestProcesses_READMETryIt(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	blocks := readmeBlocks(t, string(readme))
	var running, stopped int
	for _, b := range blocks {
		if b.stopped {
			stopped++
		} else if stopped > 0 {
			t.Fatalf("README.md:%d: a cluster-running block after a cluster-stopped one (the test does not restart graft dev)", b.line)
		} else {
			running++
		}
	}
	if running == 0 || stopped == 0 {
		t.Fatalf("README.md's %q section has %d cluster-running and %d cluster-stopped doc-test blocks; want some of each", readmeSection, running, stopped)
	}

	work := t.TempDir() // stands for the repository root: README.md, bin/graft, graft-dev/
	if err := os.WriteFile(filepath.Join(work, "README.md"), readme, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(work, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(graftBin, filepath.Join(work, "bin", "graft")); err != nil {
		t.Fatal(err)
	}
	base := freePortBase(t)
	dev := startDev(t, "--dir", filepath.Join(work, "graft-dev"), "--port-base", strconv.Itoa(base))
	state := filepath.Join(work, ".doc-test-state")
	devRunning, checks := true, 0
	for i, b := range blocks {
		if b.stopped && devRunning {
			dev.interrupt(t)
			devRunning = false
		}
		out := filepath.Join(work, fmt.Sprintf(".doc-test-%d.out", i))
		script, n := docScript(t, b, base, state, out)
		checks += n
		runDocBlock(t, work, b, script, out, base)
	}
	if checks < 5 {
		t.Errorf("the blocks have %d # => checks; the README shows more outputs than that", checks)
	}
}

// runDocBlock runs one block's script with bash in work and fails the
// test, showing the script and its output, if bash fails.
func runDocBlock(t *testing.T, work string, b docBlock, script, out string, base int) {
	t.Helper()
	stdout, err := os.Create(out)
	if err != nil {
		t.Fatal(err)
	}
	defer stdout.Close()
	var stderr strings.Builder
	cmd := exec.Command("bash", "-c", script)
	cmd.Dir = work
	cmd.Env = append(os.Environ(), fmt.Sprintf("GRAFT_ENDPOINT=http://127.0.0.1:%d", base+1))
	cmd.Stdout, cmd.Stderr = stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} // its background jobs die with it
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	err = cmd.Wait()
	_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // a job the block left running
	if err != nil {
		got, _ := os.ReadFile(out)
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("run README.md block at line %d: %v", b.line, err)
		}
		t.Fatalf("README.md block at line %d failed (%v)\nstderr:\n%s\nstdout:\n%s\nscript:\n%s", b.line, err, tail(stderr.String(), 40), tail(string(got), 40), numbered(script))
	}
}

func numbered(s string) string {
	var b strings.Builder
	sc := bufio.NewScanner(strings.NewReader(s))
	for n := 1; sc.Scan(); n++ {
		fmt.Fprintf(&b, "%3d  %s\n", n, sc.Text())
	}
	return b.String()
}
