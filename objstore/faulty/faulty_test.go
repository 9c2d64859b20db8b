package faulty_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/graft-cluster/graft/objstore"
	"github.com/graft-cluster/graft/objstore/faulty"
	"github.com/graft-cluster/graft/objstore/storetest"
)

func newStore(t *testing.T, cfg faulty.Config) (*faulty.Store, objstore.Store) {
	t.Helper()
	inner := objstore.NewMemory()
	s, err := faulty.New(inner, cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s, inner
}

func setFault(t *testing.T, s *faulty.Store, op faulty.Op, f faulty.Fault) {
	t.Helper()
	if err := s.SetFault(op, f); err != nil {
		t.Fatalf("SetFault(%s): %v", op, err)
	}
}

func TestStore_Conformance(t *testing.T) {
	t.Parallel()
	storetest.Run(t, func(t *testing.T) objstore.Store {
		s, _ := newStore(t, faulty.DefaultConfig())
		return s
	})
}

func TestStore_Counts(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, _ := newStore(t, faulty.DefaultConfig())
	for i := range 3 {
		if err := s.Put(ctx, fmt.Sprintf("k%d", i), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	_, _ = s.Get(ctx, "k0")
	_, _ = s.Get(ctx, "missing")
	_ = s.PutIfAbsent(ctx, "k0", []byte("y"))
	_, _ = s.GetRange(ctx, "k0", 0, 1)
	_, _ = s.List(ctx, "")
	_ = s.Delete(ctx, "k1")

	want := map[faulty.Op][2]int64{ // calls, failures
		faulty.OpPut:         {3, 0},
		faulty.OpGet:         {2, 1},
		faulty.OpPutIfAbsent: {1, 1},
		faulty.OpGetRange:    {1, 0},
		faulty.OpList:        {1, 0},
		faulty.OpDelete:      {1, 0},
	}
	for _, op := range faulty.Ops {
		if got := [2]int64{s.Calls(op), s.Failures(op)}; got != want[op] {
			t.Errorf("%s: calls, failures = %v, want %v", op, got, want[op])
		}
	}
	s.ResetCounts()
	for _, op := range faulty.Ops {
		if s.Calls(op) != 0 || s.Failures(op) != 0 {
			t.Errorf("%s after ResetCounts: %d calls, %d failures", op, s.Calls(op), s.Failures(op))
		}
	}
}

func TestStore_DownUp(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, inner := newStore(t, faulty.DefaultConfig())
	if err := s.Put(ctx, "k", []byte("before")); err != nil {
		t.Fatal(err)
	}
	s.Down()
	if !s.IsDown() {
		t.Fatal("IsDown = false after Down")
	}
	if err := s.Put(ctx, "k", []byte("during")); !errors.Is(err, faulty.ErrDown) {
		t.Fatalf("Put while down = %v, want ErrDown", err)
	}
	if _, err := s.Get(ctx, "k"); !errors.Is(err, faulty.ErrDown) {
		t.Fatalf("Get while down = %v, want ErrDown", err)
	}
	if _, err := s.List(ctx, ""); !errors.Is(err, faulty.ErrDown) {
		t.Fatalf("List while down = %v, want ErrDown", err)
	}
	if got, _ := inner.Get(ctx, "k"); string(got) != "before" {
		t.Fatalf("inner store holds %q, want the Put made while down not to reach it", got)
	}
	s.Up()
	if err := s.Put(ctx, "k", []byte("after")); err != nil {
		t.Fatalf("Put after Up: %v", err)
	}
	if got, _ := s.Get(ctx, "k"); string(got) != "after" {
		t.Fatalf("Get after Up = %q, want after", got)
	}
	if got := s.Failures(faulty.OpPut); got != 1 {
		t.Fatalf("put failures = %d, want 1", got)
	}
}

func TestStore_FaultErr(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, inner := newStore(t, faulty.DefaultConfig())
	boom := errors.New("boom")
	setFault(t, s, faulty.OpPut, faulty.Fault{Err: boom})

	err := s.Put(ctx, "k", []byte("x"))
	if !errors.Is(err, boom) || !errors.Is(err, faulty.ErrInjected) {
		t.Fatalf("Put = %v, want boom and ErrInjected", err)
	}
	if _, err := inner.Get(ctx, "k"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("inner Get = %v, want ErrNotFound: a failed Put must not reach the inner store", err)
	}
	// Other operations are unaffected.
	if err := s.PutIfAbsent(ctx, "k", []byte("x")); err != nil {
		t.Fatalf("PutIfAbsent: %v", err)
	}
	s.ClearFaults()
	if err := s.Put(ctx, "k", []byte("y")); err != nil {
		t.Fatalf("Put after ClearFaults: %v", err)
	}
}

func TestStore_FaultTimes(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, _ := newStore(t, faulty.DefaultConfig())
	setFault(t, s, faulty.OpGet, faulty.Fault{Rate: 1, Times: 2})
	var errs []bool
	for range 4 {
		_, err := s.Get(ctx, "k")
		errs = append(errs, errors.Is(err, faulty.ErrInjected))
	}
	if want := []bool{true, true, false, false}; !slices.Equal(errs, want) {
		t.Fatalf("injected per call = %v, want %v", errs, want)
	}
}

func TestStore_FaultKeyPrefix(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, _ := newStore(t, faulty.Config{
		Faults: map[faulty.Op]faulty.Fault{
			faulty.OpPutIfAbsent: {KeyPrefix: "volumes/v1/log/", Err: errors.New("log down")},
		},
	})
	if err := s.PutIfAbsent(ctx, "volumes/v1/segments/s1", []byte("seg")); err != nil {
		t.Fatalf("segment PutIfAbsent: %v", err)
	}
	if err := s.PutIfAbsent(ctx, "volumes/v1/log/1", []byte("rec")); !errors.Is(err, faulty.ErrInjected) {
		t.Fatalf("log PutIfAbsent = %v, want ErrInjected", err)
	}
}

// failures returns which of n Gets an injected fault struck.
func failures(t *testing.T, seed uint64, rate float64, n int) []bool {
	t.Helper()
	s, _ := newStore(t, faulty.Config{Seed: seed, Faults: map[faulty.Op]faulty.Fault{faulty.OpGet: {Rate: rate}}})
	out := make([]bool, n)
	for i := range out {
		_, err := s.Get(t.Context(), "k")
		out[i] = errors.Is(err, faulty.ErrInjected)
	}
	return out
}

func TestStore_FaultRateIsSeeded(t *testing.T) {
	t.Parallel()
	a := failures(t, 7, 0.3, 1000)
	if n := countTrue(a); n < 200 || n > 400 {
		t.Fatalf("rate 0.3 failed %d of 1000 calls", n)
	}
	if b := failures(t, 7, 0.3, 1000); !slices.Equal(a, b) {
		t.Fatal("the same seed gave different failures")
	}
	if c := failures(t, 8, 0.3, 1000); slices.Equal(a, c) {
		t.Fatal("different seeds gave the same failures")
	}
}

func countTrue(bs []bool) int {
	n := 0
	for _, b := range bs {
		if b {
			n++
		}
	}
	return n
}

// A lost response: the write happens, the caller sees an error, and its
// retry of a create-only write finds the object it made.
func TestStore_FaultAfter(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, inner := newStore(t, faulty.DefaultConfig())
	setFault(t, s, faulty.OpPutIfAbsent, faulty.Fault{Rate: 1, After: true, Times: 1})
	if err := s.PutIfAbsent(ctx, "log/1", []byte("rec")); !errors.Is(err, faulty.ErrInjected) {
		t.Fatalf("PutIfAbsent = %v, want ErrInjected", err)
	}
	if got, err := inner.Get(ctx, "log/1"); err != nil || string(got) != "rec" {
		t.Fatalf("inner Get = %q, %v; want the write to have happened", got, err)
	}
	if err := s.PutIfAbsent(ctx, "log/1", []byte("rec")); !errors.Is(err, objstore.ErrExists) {
		t.Fatalf("retried PutIfAbsent = %v, want ErrExists", err)
	}
}

func TestStore_Hang(t *testing.T) {
	t.Parallel()
	s, inner := newStore(t, faulty.DefaultConfig())
	setFault(t, s, faulty.OpPut, faulty.Fault{Hang: true})
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel()
	if err := s.Put(ctx, "k", []byte("x")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Put = %v, want DeadlineExceeded", err)
	}
	if _, err := inner.Get(t.Context(), "k"); !errors.Is(err, objstore.ErrNotFound) {
		t.Fatalf("inner Get = %v, want ErrNotFound: a hung call must not reach the store", err)
	}

	// Hanging after the call: the write lands, the caller times out.
	setFault(t, s, faulty.OpPut, faulty.Fault{Hang: true, After: true})
	ctx2, cancel2 := context.WithTimeout(t.Context(), 20*time.Millisecond)
	defer cancel2()
	if err := s.Put(ctx2, "k", []byte("x")); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Put = %v, want DeadlineExceeded", err)
	}
	if _, err := inner.Get(t.Context(), "k"); err != nil {
		t.Fatalf("inner Get = %v, want the write to have happened", err)
	}
}

func TestStore_Latency(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, faulty.DefaultConfig())
	// A delay longer than the caller's deadline ends in the deadline; no
	// clock is read.
	setFault(t, s, faulty.OpGet, faulty.Fault{Latency: time.Hour})
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	if _, err := s.Get(ctx, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Get = %v, want DeadlineExceeded", err)
	}
	// Short latency with jitter delays but does not fail.
	setFault(t, s, faulty.OpPut, faulty.Fault{Latency: time.Millisecond, Jitter: time.Millisecond})
	for range 5 {
		if err := s.Put(t.Context(), "k", []byte("x")); err != nil {
			t.Fatalf("Put: %v", err)
		}
	}
}

func TestStore_Hook(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	var puts atomic.Int64
	s, _ := newStore(t, faulty.Config{Hook: func(_ context.Context, op faulty.Op, key string) error {
		if op == faulty.OpPut && key == "k" && puts.Add(1) == 3 {
			return errors.New("third put of k")
		}
		return nil
	}})
	var injected []int
	for i := range 5 {
		if err := s.Put(ctx, "k", []byte("x")); errors.Is(err, faulty.ErrInjected) {
			injected = append(injected, i+1)
		} else if err != nil {
			t.Fatalf("Put #%d: %v", i+1, err)
		}
	}
	if !slices.Equal(injected, []int{3}) {
		t.Fatalf("injected into puts %v, want [3]", injected)
	}
}

func TestStore_InnerErrorsPassThrough(t *testing.T) {
	t.Parallel()
	s, _ := newStore(t, faulty.DefaultConfig())
	_, err := s.Get(t.Context(), "missing")
	if !errors.Is(err, objstore.ErrNotFound) || errors.Is(err, faulty.ErrInjected) {
		t.Fatalf("Get = %v, want the inner ErrNotFound, not injected", err)
	}
}

func TestConfig_Validate(t *testing.T) {
	t.Parallel()
	for _, f := range []faulty.Fault{
		{Rate: -0.1},
		{Rate: 1.5},
		{Latency: -time.Second},
		{Jitter: -time.Second},
		{Times: -1},
	} {
		cfg := faulty.Config{Faults: map[faulty.Op]faulty.Fault{faulty.OpGet: f}}
		if err := cfg.Validate(); !errors.Is(err, faulty.ErrInvalidFault) {
			t.Errorf("Validate(%+v) = %v, want ErrInvalidFault", f, err)
		}
		if _, err := faulty.New(objstore.NewMemory(), cfg); !errors.Is(err, faulty.ErrInvalidFault) {
			t.Errorf("New(%+v) = %v, want ErrInvalidFault", f, err)
		}
	}
	s, _ := newStore(t, faulty.DefaultConfig())
	if err := s.SetFault(faulty.OpPut, faulty.Fault{Rate: 2}); !errors.Is(err, faulty.ErrInvalidFault) {
		t.Errorf("SetFault(rate 2) = %v, want ErrInvalidFault", err)
	}
	if err := s.SetFault(faulty.Op(99), faulty.Fault{}); !errors.Is(err, faulty.ErrInvalidFault) {
		t.Errorf("SetFault(op 99) = %v, want ErrInvalidFault", err)
	}
	cfg := faulty.DefaultConfig()
	if err := cfg.Validate(); err != nil {
		t.Errorf("DefaultConfig().Validate() = %v", err)
	}
}

// Faults and the switch change while calls run: a data race here shows
// under -race.
func TestStore_ConcurrentChanges(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	s, _ := newStore(t, faulty.DefaultConfig())
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Go(func() {
			for i := range 300 {
				key := fmt.Sprintf("g%d/%d", g, i%10)
				_ = s.Put(ctx, key, []byte("x"))
				_, _ = s.Get(ctx, key)
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for i := 0; ; i++ {
		select {
		case <-done:
			if got := [2]int64{s.Calls(faulty.OpPut), s.Calls(faulty.OpGet)}; got != [2]int64{1200, 1200} {
				t.Fatalf("calls (put, get) = %v, want 1200 each", got)
			}
			return
		default:
		}
		if i%2 == 0 {
			s.Down()
		} else {
			s.Up()
		}
		setFault(t, s, faulty.OpGet, faulty.Fault{Rate: 0.5, Jitter: time.Microsecond})
		_ = s.SetFaultAll(faulty.Fault{Rate: 0.1})
		s.ClearFaults()
	}
}

func TestOp_String(t *testing.T) {
	t.Parallel()
	var names []string
	for _, op := range faulty.Ops {
		names = append(names, op.String())
	}
	want := []string{"put", "put-if-absent", "get", "get-range", "list", "delete"}
	if !slices.Equal(names, want) {
		t.Fatalf("names = %q, want %q", names, want)
	}
	if got := faulty.Op(42).String(); got != "op(42)" {
		t.Fatalf("Op(42) = %q", got)
	}
}
