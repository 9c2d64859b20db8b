package objstore_test

import (
	"context"
	"testing"

	"github.com/graft-cluster/graft/objstore"
)

// plainStore hides a store's RangeLister, so ListAfter takes its fallback.
type plainStore struct{ objstore.Store }

func TestListAfter_WindowAndFallback(t *testing.T) {
	ctx := context.Background()
	mem := objstore.NewMemory()
	for _, k := range []string{"a/1", "a/2", "a/3", "a/4", "b/1"} {
		if err := mem.Put(ctx, k, []byte(k)); err != nil {
			t.Fatal(err)
		}
	}
	for name, s := range map[string]objstore.Store{"range lister": mem, "fallback": plainStore{mem}} {
		t.Run(name, func(t *testing.T) {
			for _, tc := range []struct {
				after string
				limit int
				want  []string
			}{
				{"", 2, []string{"a/1", "a/2"}},
				{"a/2", 5, []string{"a/3", "a/4"}},
				{"a/1x", 1, []string{"a/2"}},
				{"a/4", 3, nil},
			} {
				objs, err := objstore.ListAfter(ctx, s, "a/", tc.after, tc.limit)
				if err != nil {
					t.Fatal(err)
				}
				var got []string
				for _, o := range objs {
					got = append(got, o.Key)
				}
				if len(got) != len(tc.want) || (len(got) > 0 && got[0] != tc.want[0] || len(got) > 1 && got[len(got)-1] != tc.want[len(tc.want)-1]) {
					t.Fatalf("ListAfter(a/, %q, %d) = %q, want %q", tc.after, tc.limit, got, tc.want)
				}
			}
		})
	}
}
