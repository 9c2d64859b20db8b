package faulty

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/graft-cluster/graft/objstore"
)

// Sentinel errors. Every fault the wrapper injects wraps ErrInjected (and
// Fault.Err when set); calls failed by Down wrap ErrDown.
var (
	// ErrInjected marks an error injected by a Fault or the Hook.
	ErrInjected = errors.New("faulty: injected fault")
	// ErrDown reports a call made while the store is down.
	ErrDown = errors.New("faulty: store down")
	// ErrInvalidFault reports a Fault or Config that Validate rejects.
	ErrInvalidFault = errors.New("faulty: invalid fault")
)

// Op names a Store operation.
type Op int

// The operations, in the order of the Store interface.
const (
	OpPut Op = iota
	OpPutIfAbsent
	OpGet
	OpGetRange
	OpList
	OpDelete
	numOps
)

// Ops lists every Op.
var Ops = []Op{OpPut, OpPutIfAbsent, OpGet, OpGetRange, OpList, OpDelete}

var opNames = [numOps]string{"put", "put-if-absent", "get", "get-range", "list", "delete"}

func (o Op) String() string {
	if o < 0 || o >= numOps {
		return fmt.Sprintf("op(%d)", int(o))
	}
	return opNames[o]
}

// Fault is what happens to the calls of one operation. The zero Fault does
// nothing. A call is affected when its key (List: its prefix) starts with
// KeyPrefix; an affected call is delayed by Latency plus jitter, then hangs
// if Hang is set, then fails if it is chosen to (Err, Rate).
type Fault struct {
	// KeyPrefix limits the fault to keys starting with it. Default "": all
	// keys.
	KeyPrefix string
	// Latency delays each affected call. Default 0.
	Latency time.Duration
	// Jitter adds a random delay, uniform in [0, Jitter), to Latency.
	// Default 0.
	Jitter time.Duration
	// Hang blocks each affected call until its context is done and returns
	// the context's error. Default false.
	Hang bool
	// Err is the error a failing call returns, wrapped together with
	// ErrInjected. Default nil: ErrInjected alone.
	Err error
	// Rate is the fraction of affected calls, in [0, 1], that fail, drawn
	// from the seeded generator. When Err is set, Rate 0 means every
	// affected call fails. Default 0.
	Rate float64
	// After moves the fault behind the inner call: the call reaches the
	// store (a write happens), then its response is delayed, hung or lost.
	// Default false: the fault strikes before the inner store is called.
	After bool
	// Times is how many affected calls the fault applies to before it
	// clears itself; 0 means no limit. Default 0.
	Times int
}

// Validate checks the fault.
func (f *Fault) Validate() error {
	var errs []error
	if f.Latency < 0 || f.Jitter < 0 {
		errs = append(errs, fmt.Errorf("latency %v and jitter %v must not be negative", f.Latency, f.Jitter))
	}
	if !(f.Rate >= 0 && f.Rate <= 1) {
		errs = append(errs, fmt.Errorf("rate %v out of range [0, 1]", f.Rate))
	}
	if f.Times < 0 {
		errs = append(errs, fmt.Errorf("times %d negative", f.Times))
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidFault, err)
	}
	return nil
}

func (f *Fault) fails() bool { return f.Rate > 0 || f.Err != nil }

// inert reports whether the fault does nothing at all.
func (f *Fault) inert() bool {
	return f.Latency == 0 && f.Jitter == 0 && !f.Hang && !f.fails()
}

// Config configures a Store.
type Config struct {
	// Seed seeds the generator behind Fault.Rate and Fault.Jitter. Default
	// 1.
	Seed uint64
	// Faults are the faults in force from the start, per operation; SetFault
	// changes them later. Default none.
	Faults map[Op]Fault
	// Hook, when not nil, runs at the start of every call (after the down
	// check, before faults); a non-nil error fails the call without calling
	// the inner store, wrapped with ErrInjected. It serves faults a Fault
	// cannot express, such as failing the third PUT of one key. It must be
	// safe for concurrent use. Default nil.
	Hook func(ctx context.Context, op Op, key string) error
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	return Config{Seed: 1}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	for op, f := range c.Faults {
		if op < 0 || op >= numOps {
			return fmt.Errorf("%w: unknown op %d", ErrInvalidFault, int(op))
		}
		if err := f.Validate(); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	return nil
}

// Store is an objstore.Store that injects faults into the calls it passes
// to an inner Store. It is safe for concurrent use; faults and the down
// switch may change while calls are in flight (a call sees the state at
// its start).
type Store struct {
	inner objstore.Store
	hook  func(ctx context.Context, op Op, key string) error
	down  atomic.Bool

	mu     sync.Mutex
	rng    *rand.Rand
	faults [numOps]Fault

	calls, failures [numOps]atomic.Int64
}

var _ objstore.Store = (*Store)(nil)

// New wraps inner. Close closes inner.
func New(inner objstore.Store, cfg Config) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	s := &Store{
		inner: inner,
		hook:  cfg.Hook,
		rng:   rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15)),
	}
	for op, f := range cfg.Faults {
		s.faults[op] = f
	}
	return s, nil
}

// SetFault replaces op's fault; the zero Fault clears it.
func (s *Store) SetFault(op Op, f Fault) error {
	if op < 0 || op >= numOps {
		return fmt.Errorf("%w: unknown op %d", ErrInvalidFault, int(op))
	}
	if err := f.Validate(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	s.mu.Lock()
	s.faults[op] = f
	s.mu.Unlock()
	return nil
}

// SetFaultAll sets the same fault on every operation.
func (s *Store) SetFaultAll(f Fault) error {
	for _, op := range Ops {
		if err := s.SetFault(op, f); err != nil {
			return err
		}
	}
	return nil
}

// ClearFaults removes every fault.
func (s *Store) ClearFaults() {
	s.mu.Lock()
	s.faults = [numOps]Fault{}
	s.mu.Unlock()
}

// Down makes every call fail at once with ErrDown until Up. Calls already
// in flight are not affected.
func (s *Store) Down() { s.down.Store(true) }

// Up ends Down.
func (s *Store) Up() { s.down.Store(false) }

// IsDown reports whether the store is down.
func (s *Store) IsDown() bool { return s.down.Load() }

// Calls returns the number of op calls made since New or ResetCounts,
// failed ones included.
func (s *Store) Calls(op Op) int64 { return s.calls[op].Load() }

// Failures returns the number of op calls that returned an error, injected
// or not, since New or ResetCounts.
func (s *Store) Failures(op Op) int64 { return s.failures[op].Load() }

// ResetCounts sets every call and failure count to zero.
func (s *Store) ResetCounts() {
	for op := range numOps {
		s.calls[op].Store(0)
		s.failures[op].Store(0)
	}
}

// plan is what the fault does to one call, decided at its start.
type plan struct {
	delay time.Duration
	hang  bool
	fail  error // nil: do not fail
	after bool
}

func (s *Store) plan(op Op, key string) plan {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := &s.faults[op]
	if f.inert() || !strings.HasPrefix(key, f.KeyPrefix) {
		return plan{}
	}
	p := plan{delay: f.Latency, hang: f.Hang, after: f.After}
	if f.Jitter > 0 {
		p.delay += time.Duration(s.rng.Int64N(int64(f.Jitter)))
	}
	if f.fails() && (f.Rate == 0 || f.Rate >= 1 || s.rng.Float64() < f.Rate) {
		p.fail = ErrInjected
		if f.Err != nil && !errors.Is(f.Err, ErrInjected) {
			p.fail = fmt.Errorf("%w: %w", ErrInjected, f.Err)
		}
	}
	if f.Times > 0 {
		if f.Times--; f.Times == 0 {
			*f = Fault{}
		}
	}
	return p
}

// wait delays and hangs as planned, returning the context's error if it
// ends first.
func (p plan) wait(ctx context.Context) error {
	if p.delay > 0 {
		t := time.NewTimer(p.delay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if p.hang {
		<-ctx.Done()
		return ctx.Err()
	}
	return nil
}

// do runs one call of op through the down switch, the hook and op's fault.
// Errors of the inner store pass through as they are; injected ones (and
// context errors of injected waits) say which call they struck.
func (s *Store) do(ctx context.Context, op Op, key string, call func() error) error {
	s.calls[op].Add(1)
	injected, err := s.run(ctx, op, key, call)
	if err != nil {
		s.failures[op].Add(1)
		if injected {
			err = fmt.Errorf("%s %s: %w", op, key, err)
		}
	}
	return err
}

func (s *Store) run(ctx context.Context, op Op, key string, call func() error) (injected bool, err error) {
	if s.down.Load() {
		return true, ErrDown
	}
	if s.hook != nil {
		if err := s.hook(ctx, op, key); err != nil {
			if errors.Is(err, ErrInjected) {
				return true, err
			}
			return true, fmt.Errorf("%w: %w", ErrInjected, err)
		}
	}
	p := s.plan(op, key)
	if p.after {
		err = call()
		if werr := p.wait(ctx); werr != nil {
			return true, werr
		}
		if p.fail != nil {
			return true, p.fail
		}
		return false, err
	}
	if err := p.wait(ctx); err != nil {
		return true, err
	}
	if p.fail != nil {
		return true, p.fail
	}
	return false, call()
}

// Put implements objstore.Store.
func (s *Store) Put(ctx context.Context, key string, data []byte) error {
	return s.do(ctx, OpPut, key, func() error { return s.inner.Put(ctx, key, data) })
}

// PutIfAbsent implements objstore.Store.
func (s *Store) PutIfAbsent(ctx context.Context, key string, data []byte) error {
	return s.do(ctx, OpPutIfAbsent, key, func() error { return s.inner.PutIfAbsent(ctx, key, data) })
}

// Get implements objstore.Store.
func (s *Store) Get(ctx context.Context, key string) ([]byte, error) {
	var out []byte
	err := s.do(ctx, OpGet, key, func() (err error) {
		out, err = s.inner.Get(ctx, key)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// GetRange implements objstore.Store.
func (s *Store) GetRange(ctx context.Context, key string, off, n int64) ([]byte, error) {
	var out []byte
	err := s.do(ctx, OpGetRange, key, func() (err error) {
		out, err = s.inner.GetRange(ctx, key, off, n)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// List implements objstore.Store.
func (s *Store) List(ctx context.Context, prefix string) ([]objstore.ObjectInfo, error) {
	var out []objstore.ObjectInfo
	err := s.do(ctx, OpList, prefix, func() (err error) {
		out, err = s.inner.List(ctx, prefix)
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// Delete implements objstore.Store.
func (s *Store) Delete(ctx context.Context, key string) error {
	return s.do(ctx, OpDelete, key, func() error { return s.inner.Delete(ctx, key) })
}

// Close closes the inner store.
func (s *Store) Close() error {
	return s.inner.Close()
}
