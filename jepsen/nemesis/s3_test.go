package nemesis

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeS3 records the object-store calls a nemesis makes.
type fakeS3 struct {
	Cluster // nil: any other call panics
	mu      sync.Mutex
	calls   []string
}

func (f *fakeS3) add(format string, args ...any) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls = append(f.calls, fmt.Sprintf(format, args...))
	return nil
}

func (f *fakeS3) S3Down(down bool) error        { return f.add("down %v", down) }
func (f *fakeS3) S3Delay(d time.Duration) error { return f.add("delay %s", d) }
func (f *fakeS3) S3Reset() error                { return f.add("reset") }
func (f *fakeS3) S3Rate(bps int64) error        { return f.add("rate %d", bps) }
func (f *fakeS3) S3Errors(_ context.Context, rate float64, status int, match string) error {
	return f.add("errors %v %d %q", rate, status, match)
}

func TestS3Fault(t *testing.T) {
	heal := []string{"down false", "delay 0s", "rate 0", `errors 0 0 ""`}
	cases := map[string]string{
		"s3-blackhole": "down true",
		"s3-reset":     "reset",
		"s3-slow":      "delay ",
		"s3-trickle":   "rate ",
		"s3-errors":    "errors ",
	}
	for name, want := range cases {
		t.Run(name, func(t *testing.T) {
			f := &fakeS3{}
			ft := newFault(name, rand.New(rand.NewPCG(1, 2)), 0)
			what, err := ft.start(t.Context(), f)
			if err != nil {
				t.Fatalf("start: %v", err)
			}
			if len(f.calls) != 1 || !strings.HasPrefix(f.calls[0], want) {
				t.Fatalf("start made calls %q, want one starting with %q", f.calls, want)
			}
			if got := S3Mode(name, what); got != name {
				t.Errorf("S3Mode(%q, %q) = %q, want %q", name, what, got, name)
			}
			f.calls = nil
			if err := ft.stop(t.Context(), f); err != nil {
				t.Fatalf("stop: %v", err)
			}
			if !slices.Equal(f.calls, heal) {
				t.Errorf("stop made calls %q, want %q", f.calls, heal)
			}
		})
	}

	t.Run("s3 picks every mode from the seed", func(t *testing.T) {
		seen := map[string]bool{}
		rng := rand.New(rand.NewPCG(7, 7))
		for range 100 {
			f := &fakeS3{}
			what, err := newFault("s3", rng, 0).start(t.Context(), f)
			if err != nil {
				t.Fatal(err)
			}
			mode := S3Mode("s3", what)
			if mode == "" {
				t.Fatalf("S3Mode(s3, %q) = \"\"", what)
			}
			seen[mode] = true
		}
		for _, m := range S3Modes {
			if !seen[m] {
				t.Errorf("s3 never picked %s in 100 windows", m)
			}
		}
	})

	t.Run("s3-errors sometimes targets segment uploads only", func(t *testing.T) {
		var all, segments int
		rng := rand.New(rand.NewPCG(3, 3))
		for range 50 {
			f := &fakeS3{}
			if _, err := newFault("s3-errors", rng, 0).start(t.Context(), f); err != nil {
				t.Fatal(err)
			}
			if strings.HasSuffix(f.calls[0], `"/segments/"`) {
				segments++
			} else {
				all++
			}
		}
		if all == 0 || segments == 0 {
			t.Errorf("s3-errors in 50 windows: %d on all requests, %d on segments only; want both", all, segments)
		}
	})

	t.Run("a cluster without object-store faults", func(t *testing.T) {
		type plain struct{ Cluster }
		if _, err := newFault("s3-reset", rand.New(rand.NewPCG(1, 1)), 0).start(t.Context(), plain{}); err == nil {
			t.Error("start on a cluster without S3Faults succeeded")
		}
	})
}

func TestParse_s3(t *testing.T) {
	got, err := Parse("s3,s3-errors, s3-trickle")
	if err != nil || !slices.Equal(got, []string{"s3", "s3-errors", "s3-trickle"}) {
		t.Fatalf("Parse = %q, %v", got, err)
	}
	if _, err := Parse("s3-bogus"); err == nil {
		t.Error("Parse(s3-bogus) succeeded")
	}
	if S3Mode("pause", "SIGSTOP n1") != "" {
		t.Error("S3Mode of a pause window is not empty")
	}
}
