package cluster_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/graft-cluster/graft/cluster/clustertest"
	"github.com/graft-cluster/graft/volume"
)

// TestNode_StatusPage loads / from a follower of a three-node cluster
// after a few commits: the page names the leader, lists every member, and
// counts the commits this node received.
func TestNode_StatusPage(t *testing.T) {
	c := clustertest.Start(t, 3)
	leader := c.WaitLeader()
	f := (leader + 1) % 3
	ctx := testCtx(t)
	cl := c.Client(f)
	vid := volume.MustNewID()
	var base volume.LSN
	for i := range 3 {
		snap, err := cl.Commit(ctx, vid, base, 4, []volume.PageWrite{{Idx: volume.PageIdx(i + 1), Data: page(byte(i))}})
		if err != nil {
			t.Fatal(err)
		}
		base = snap.LSN
	}
	resp, err := http.Get(c.Endpoint(f) + "/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body := string(b)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/html; charset=utf-8" {
		t.Fatalf("GET /: %s %q", resp.Status, resp.Header.Get("Content-Type"))
	}
	leaderID := c.Nodes[leader].ID()
	want := []string{
		"<title>graft node " + c.Nodes[f].ID() + "</title>",
		`<td id="leader"><span class="leader">` + leaderID + `</span></td>`,
		`<meta http-equiv="refresh" content="5">`,
		`<svg class="sl"`,
		`id="commit-rate"`,
	}
	for _, n := range c.Nodes {
		want = append(want, `<tr data-id="`+n.ID()+`" data-state="`)
	}
	for _, w := range want {
		if !strings.Contains(body, w) {
			t.Errorf("status page lacks %q", w)
		}
	}
	if !strings.Contains(body, `<tr data-id="`+leaderID+`" data-state="leader">`) {
		t.Errorf("the leader's row does not say leader")
	}
	if t.Failed() {
		t.Logf("page:\n%s", body)
	}
	// Unknown paths are still 404, not the status page.
	resp, err = http.Get(c.Endpoint(f) + "/nope")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("GET /nope: %s, want 404", resp.Status)
	}
}
