package workload

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/graft-cluster/graft/client"
	"github.com/graft-cluster/graft/jepsen/history"
	"github.com/graft-cluster/graft/volume"
)

// Bank accounts live in pages 1..BankAccounts of one volume: a page's
// first 8 bytes are its balance (big-endian int64). A transfer reads the
// head's balances and commits both changed pages on that head, so a lost
// update (two transfers applied on one base) breaks the conserved total.
const (
	BankAccounts = 8
	BankInitial  = 100
	BankTotal    = BankAccounts * BankInitial
)

// Bank is the bank workload.
type Bank struct {
	seed uint64
	vid  volume.ID
}

// Name implements Workload.
func (b *Bank) Name() string { return "bank" }

// VIDs implements Workload.
func (b *Bank) VIDs() []volume.ID { return []volume.ID{b.vid} }

// balancePage is an account page: the balance, then a nonce that makes
// every transfer's pages (and so its commit hash) unique. Without it, two
// processes moving the same amount between the same accounts on the same
// head send byte-identical commits, which graft rightly treats as one
// commit acknowledged twice (the hash is the commit's identity).
func balancePage(v int64, nonce uint64) []byte {
	p := make([]byte, volume.PageSize)
	binary.BigEndian.PutUint64(p, uint64(v))
	binary.BigEndian.PutUint64(p[8:], nonce)
	return p
}

// Balance decodes a bank page.
func Balance(page []byte) int64 { return int64(binary.BigEndian.Uint64(page)) }

// Setup opens the accounts with one commit on the empty volume, recorded
// in the history like any commit.
func (b *Bank) Setup(ctx context.Context, env *Env) error {
	env.defaults()
	b.vid = mintVIDs(1, b.seed^0xba4b)[0]
	c, err := newClient(env, env.Endpoints[0])
	if err != nil {
		return err
	}
	pages := make([]volume.PageWrite, BankAccounts)
	for i := range pages {
		pages[i] = volume.PageWrite{Idx: volume.PageIdx(i + 1), Data: balancePage(BankInitial, 0)}
	}
	hash := volume.CommitHash(b.vid, 1, BankAccounts, pages).String()
	deadline := time.Now().Add(30 * time.Second)
	for proc := -1; ; proc-- { // an unknown outcome retires the process
		inv := env.Rec.Add(history.Op{Process: proc, Type: history.Invoke, F: "commit", Node: 0, VID: b.vid.String(), Base: 0, Hash: hash})
		octx, cancel := context.WithTimeout(ctx, env.OpTimeout)
		snap, err := c.Commit(octx, b.vid, 0, BankAccounts, pages)
		cancel()
		done := inv
		done.Type = outcome(err)
		if err == nil {
			done.LSN = uint64(snap.LSN)
			env.Rec.Add(done)
			return nil
		}
		done.Error = err.Error()
		env.Rec.Add(done)
		if errors.Is(err, client.ErrConflict) || time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("open bank accounts: %w", err)
		}
	}
}

// Run implements Workload: transfers (3 in 4) and full balance reads.
func (b *Bank) Run(ctx context.Context, env *Env) error {
	env.defaults()
	clients, err := clientsFor(env)
	if err != nil {
		return err
	}
	all := make([]volume.PageIdx, BankAccounts)
	for i := range all {
		all[i] = volume.PageIdx(i + 1)
	}
	processes(ctx, env.Processes, env.Seed, func(ctx context.Context, proc, w int, rng *rand.Rand) bool {
		node := w % len(env.Endpoints)
		c := clients[node]
		octx, cancel := context.WithTimeout(ctx, env.OpTimeout)
		defer cancel()
		if rng.IntN(4) == 0 {
			env.Rec.Add(history.Op{Process: proc, Type: history.Invoke, F: "balances", Node: node, VID: b.vid.String()})
			snap, pages, err := c.ReadPages(octx, b.vid, 0, all, client.ReadOptions{Consistency: client.Linearizable})
			done := history.Op{Process: proc, Type: history.OK, F: "balances", Node: node, VID: b.vid.String(), LSN: uint64(snap.LSN)}
			if err != nil {
				done = history.Op{Process: proc, Type: history.Fail, F: "balances", Node: node, VID: b.vid.String(), Error: err.Error()}
			} else {
				for _, p := range pages {
					done.Values = append(done.Values, Balance(p.Data))
				}
			}
			env.Rec.Add(done)
			return false
		}
		from, to := 1+rng.IntN(BankAccounts), 1+rng.IntN(BankAccounts-1)
		if to >= from {
			to++
		}
		// Read the two balances at the head, then commit on that head.
		snap, pages, err := c.ReadPages(octx, b.vid, 0, []volume.PageIdx{volume.PageIdx(from), volume.PageIdx(to)}, client.ReadOptions{Consistency: client.Linearizable})
		if err != nil || len(pages) != 2 {
			return false // nothing was attempted
		}
		fb, tb := Balance(pages[0].Data), Balance(pages[1].Data)
		if fb <= 0 {
			return false
		}
		amount := 1 + rng.Int64N(fb)
		nonce := rng.Uint64()
		w2 := []volume.PageWrite{
			{Idx: volume.PageIdx(from), Data: balancePage(fb-amount, nonce)},
			{Idx: volume.PageIdx(to), Data: balancePage(tb+amount, nonce)},
		}
		sorted, _ := volume.ValidateCommit(BankAccounts, w2, volume.Limits{})
		hash := volume.CommitHash(b.vid, snap.LSN+1, BankAccounts, sorted).String()
		inv := env.Rec.Add(history.Op{Process: proc, Type: history.Invoke, F: "commit", Node: node, VID: b.vid.String(),
			Base: uint64(snap.LSN), Hash: hash, Values: []int64{int64(from), int64(to), amount}})
		res, err := c.Commit(octx, b.vid, snap.LSN, BankAccounts, w2)
		done := inv
		done.Type = outcome(err)
		if err == nil {
			done.LSN = uint64(res.LSN)
		} else {
			done.Error = err.Error()
			var ce *client.ConflictError
			if errors.As(err, &ce) {
				done.Head = uint64(ce.Head.LSN)
			}
		}
		env.Rec.Add(done)
		return done.Type == history.Info
	})
	return nil
}
