package auth

import (
	"context"
	"errors"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sync/semaphore"
)

// ErrBusy is returned by Register, Login and EnsureAdmin when as many
// password hashes are running as the memory budget allows and none finished
// within the wait. The caller should retry shortly.
var ErrBusy = errors.New("too many sign-ups and sign-ins at once")

// HashMemoryMiB is what one argon2id hash of this package allocates (its
// m parameter, 19 MiB), the unit of a Hasher's budget.
const HashMemoryMiB = argonMemory >> 10

// DefaultHashConcurrency is how many hashes run at once unless configured:
// half the cores Go may use, at least one. A hash keeps a core busy for its
// whole run, so more at once than cores would finish none sooner and only
// hold more memory; and the other half is left to the sale. (On 2 cores,
// under a sign-up flood, one slot kept sale-status reads at p50 2 ms, p99
// 63 ms; two slots hashed 40 % more sign-ups but made them p50 65 ms, p99
// 230 ms.)
func DefaultHashConcurrency() int { return max(1, runtime.GOMAXPROCS(0)/2) }

// DefaultHashWait is how long a hash waits for room unless configured.
const DefaultHashWait = time.Second

// Hasher runs argon2id hashes within a memory budget: concurrency hashes of
// HashMemoryMiB each. A hash that finds no room waits, first come first
// served, for at most the configured wait, then fails with ErrBusy; without
// the bound, 250 sign-ups at once held 250 x 19 MiB and took the server past
// 5 GB. Each hash is weighed by the memory it allocates, so checking a
// stored hash with larger parameters takes more of the budget (at most all
// of it).
//
// The budget is per process on purpose, unlike the per-IP and sign-in
// limits: it is the memory and the cores of the box the hashes run on, and
// a count shared by the fleet would let them pile onto one box or hold
// back an idle one. What keeps a fleet from being made to hash too much is
// shared: the sign-in buckets per IP and the login backoff.
type Hasher struct {
	sem    *semaphore.Weighted
	budget int64 // KiB
	wait   time.Duration

	running, waiting atomic.Int64
	refused          atomic.Uint64
}

// HashStats is what a Hasher is doing, for metrics.
type HashStats struct {
	// Running is the hashes running now, Waiting those waiting for room.
	Running, Waiting int64
	// Refused counts the hashes refused with ErrBusy since start.
	Refused uint64
}

// Stats reads the hasher's counts.
func (h *Hasher) Stats() HashStats {
	return HashStats{Running: h.running.Load(), Waiting: h.waiting.Load(), Refused: h.refused.Load()}
}

// NewHasher returns a Hasher running at most concurrency hashes of this
// package's parameters at once (DefaultHashConcurrency when 0 or less), each
// waiting at most wait for room.
func NewHasher(concurrency int, wait time.Duration) *Hasher {
	if concurrency <= 0 {
		concurrency = DefaultHashConcurrency()
	}
	budget := int64(concurrency) * int64(argonMemory)
	return &Hasher{sem: semaphore.NewWeighted(budget), budget: budget, wait: wait}
}

// Hash is HashPassword within the budget. It returns ErrBusy when there was
// no room in time, or ctx's error when the caller gave up first.
func (h *Hasher) Hash(ctx context.Context, pw string) (string, error) {
	release, err := h.acquire(ctx, argonMemory)
	if err != nil {
		return "", err
	}
	defer release()
	return HashPassword(pw)
}

// Check is CheckPassword within the budget, weighed by the memory the
// stored hash asks for. It returns ErrBusy or ctx's error as Hash does, and
// ErrMalformedHash (wrapped) for a hash it cannot read.
func (h *Hasher) Check(ctx context.Context, hash, pw string) (bool, error) {
	p, err := parseHash(hash)
	if err != nil {
		return false, err
	}
	release, err := h.acquire(ctx, p.memory)
	if err != nil {
		return false, err
	}
	defer release()
	return p.matches(pw), nil
}

func (h *Hasher) acquire(ctx context.Context, kib uint32) (release func(), err error) {
	n := min(int64(kib), h.budget)
	if !h.sem.TryAcquire(n) {
		wctx, cancel := context.WithTimeout(ctx, h.wait)
		defer cancel()
		h.waiting.Add(1)
		err := h.sem.Acquire(wctx, n)
		h.waiting.Add(-1)
		if err != nil {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			h.refused.Add(1)
			return nil, ErrBusy
		}
	}
	h.running.Add(1)
	return func() { h.running.Add(-1); h.sem.Release(n) }, nil
}
