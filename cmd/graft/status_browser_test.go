package main_test

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/volume"
)

// RequireChromiumEnv, set to 1 (make test and .ci/run do), turns the
// browser test's skip for a missing Chromium into a failure.
const requireChromiumEnv = "GRAFT_REQUIRE_CHROMIUM"

// artifactsEnv names a directory the browser test also copies its
// screenshots into (they always go to t.ArtifactDir(), which go test
// keeps under -outputdir with -artifacts).
const artifactsEnv = "GRAFT_ARTIFACTS_DIR"

// chromiumPath finds a Chromium or Chrome binary, or skips the test (fails
// it under GRAFT_REQUIRE_CHROMIUM=1).
func chromiumPath(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "headless-shell"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	msg := "no Chromium found (chromium, chromium-browser, google-chrome, headless-shell on PATH): `make chromium` installs Debian's (apt-get install chromium)"
	if os.Getenv(requireChromiumEnv) == "1" {
		t.Fatalf("%s; %s=1 makes this a failure", msg, requireChromiumEnv)
	}
	t.Skip(msg)
	return ""
}

// TestProcesses_StatusPageInBrowser loads the status pages of a node and
// of the edge of a running `graft dev` (three node processes, an edge, an
// embedded S3) in headless Chromium, checks the leader and the members the
// rendered pages show against the cluster's own Status, that the
// sparklines rendered, and saves a screenshot of each page.
func TestProcesses_StatusPageInBrowser(t *testing.T) {
	chrome := chromiumPath(t)
	base := freePortBase(t)
	startDev(t, "--dir", t.TempDir(), "--port-base", strconv.Itoa(base))
	edgeURL := fmt.Sprintf("http://127.0.0.1:%d", base)
	nodeURL := fmt.Sprintf("http://127.0.0.1:%d", base+1)

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// Some traffic, so the pages have numbers: commits through the edge,
	// a read that misses and one that hits.
	viaEdge, err := client.New([]string{edgeURL})
	if err != nil {
		t.Fatal(err)
	}
	vid := volume.MustNewID()
	var base0 volume.LSN
	for i := range 5 {
		snap, err := viaEdge.Commit(ctx, vid, base0, 8, []volume.PageWrite{{Idx: volume.PageIdx(i + 1), Data: bytes.Repeat([]byte{byte(i)}, volume.PageSize)}})
		if err != nil {
			t.Fatalf("commit through the edge: %v", err)
		}
		base0 = snap.LSN
	}
	for range 2 {
		if _, _, err := viaEdge.ReadPages(ctx, vid, base0, []volume.PageIdx{1, 2}, client.ReadOptions{}); err != nil {
			t.Fatalf("read through the edge: %v", err)
		}
	}
	direct, err := client.New([]string{nodeURL})
	if err != nil {
		t.Fatal(err)
	}

	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chrome),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1200, 1000),
	)
	if os.Geteuid() == 0 {
		opts = append(opts, chromedp.NoSandbox) // Chromium refuses to run as root with its sandbox
	}
	actx, acancel := chromedp.NewExecAllocator(ctx, opts...)
	defer acancel()
	bctx, bcancel := chromedp.NewContext(actx, chromedp.WithErrorf(t.Logf))
	defer bcancel()
	// The first action starts the browser, which lives as long as bctx.
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start %s: %v", chrome, err)
	}

	shots := t.ArtifactDir()
	for _, pg := range []struct{ name, url string }{
		{"node", nodeURL + "/?refresh=0"},
		{"edge", edgeURL + "/?refresh=0"},
	} {
		// The leader can move between the cluster's answer and the page's:
		// compare again until they agree, within a deadline.
		var leader, shown, svgWidth string
		var members []string
		deadline := time.Now().Add(30 * time.Second)
		for {
			st, err := direct.Status(ctx)
			if err != nil {
				t.Fatalf("cluster status: %v", err)
			}
			leader = st.GetLeaderId()
			err = chromedp.Do(bctx, chromedp.Navigate(pg.url), chromedp.WaitVisible(chromedp.CSS("#members")))
			if err == nil {
				shown, err = chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#leader")))
			}
			if err == nil {
				members, err = chromedp.Run(bctx, chromedp.Evaluate[[]string](`Array.from(document.querySelectorAll('#members tr[data-id]')).map(r => r.dataset.id)`))
			}
			if err == nil {
				svgWidth, err = chromedp.Run(bctx, chromedp.Evaluate[string](`String(document.querySelector('svg.sl').getBoundingClientRect().width)`))
			}
			if err != nil {
				t.Fatalf("%s page %s: %v", pg.name, pg.url, err)
			}
			slices.Sort(members)
			if strings.TrimSpace(shown) == leader && leader != "" && slices.Equal(members, []string{"n1", "n2", "n3"}) {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s page shows leader %q and members %q; the cluster says leader %q, members n1 n2 n3", pg.name, shown, members, leader)
			}
		}
		if w, err := strconv.ParseFloat(svgWidth, 64); err != nil || w < 100 {
			t.Errorf("%s page: first sparkline rendered %q px wide, want a drawn SVG", pg.name, svgWidth)
		}
		png, err := chromedp.Run(bctx, chromedp.FullScreenshot(100))
		if err != nil {
			t.Fatalf("%s page screenshot: %v", pg.name, err)
		}
		path := filepath.Join(shots, "status-"+pg.name+".png")
		if err := os.WriteFile(path, png, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("%s page: leader %s, members %v; screenshot %s (%d bytes)", pg.name, leader, members, path, len(png))
		if dir := os.Getenv(artifactsEnv); dir != "" {
			if err := os.MkdirAll(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			copyPath := filepath.Join(dir, "status-"+pg.name+".png")
			if err := os.WriteFile(copyPath, png, 0o644); err != nil {
				t.Fatal(err)
			}
			t.Logf("%s page screenshot copied to %s", pg.name, copyPath)
		}
	}
	// The edge page counts the read that hit.
	if err := chromedp.Do(bctx, chromedp.Navigate(edgeURL+"/?refresh=0")); err != nil {
		t.Fatal(err)
	}
	hit, err := chromedp.Run(bctx, chromedp.Text(chromedp.CSS("#hit-ratio")))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(strings.TrimSpace(hit), "%") || strings.TrimSpace(hit) == "0.0%" {
		t.Errorf("edge hit ratio %q after a read that hit, want a percentage above 0", hit)
	}
}
