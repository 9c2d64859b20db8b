package edge

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/cluster/clustertest"
	"github.com/graft-cluster/graft/volume"
)

// TestEdge_StatusPage loads / from an edge after a miss and a hit: the
// page names the cluster's leader and members and shows a 50% hit ratio
// and the pages by source.
func TestEdge_StatusPage(t *testing.T) {
	c := clustertest.Start(t, 3, patientRaft)
	ctx := testCtx(t, time.Minute)
	te := startEdge(t, func(cfg *Config) { cfg.Upstream = c.Endpoints() })
	cl := te.client(t)
	vid := volume.MustNewID()
	commitPages(t, ctx, cl, vid, 0, 4, 1)
	for range 2 { // a miss, then a hit
		if _, _, err := cl.ReadPages(ctx, vid, 1, []volume.PageIdx{1}, client.ReadOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	resp, err := http.Get(te.URL + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body := string(b)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /: %s", resp.Status)
	}
	leader := c.Nodes[c.WaitLeader()].ID()
	want := []string{
		"<title>graft edge</title>",
		`<td id="leader"><span class="leader">` + leader + `</span></td>`,
		`<tr data-id="` + leader + `" data-state="leader">`,
		`<td id="hit-ratio">50.0%</td>`,
		`<td id="pages">cache 1 · upstream 1 · bucket 0</td>`,
		`<svg class="sl"`,
	}
	for _, n := range c.Nodes {
		want = append(want, `<tr data-id="`+n.ID()+`"`)
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("status page lacks %q", w)
		}
	}
	if t.Failed() {
		t.Logf("page:\n%s", body)
	}
}
