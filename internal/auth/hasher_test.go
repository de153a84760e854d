package auth

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestHasherBusy: with the budget taken, a hash waits its wait and fails
// with ErrBusy; a caller that gives up first gets its own error; once room
// is back, hashing works.
func TestHasherBusy(t *testing.T) {
	h := NewHasher(1, 50*time.Millisecond)
	release, err := h.acquire(context.Background(), argonMemory)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if _, err := h.Hash(context.Background(), "password-1"); !errors.Is(err, ErrBusy) {
		t.Errorf("Hash with the budget taken = %v, want ErrBusy", err)
	}
	if waited := time.Since(start); waited < 50*time.Millisecond {
		t.Errorf("Hash gave up after %v, want it to wait 50ms", waited)
	}
	if st := h.Stats(); st != (HashStats{Running: 1, Refused: 1}) {
		t.Errorf("Stats with one hash running and one refused = %+v", st)
	}
	hash, err := HashPassword("password-1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Check(context.Background(), hash, "password-1"); !errors.Is(err, ErrBusy) {
		t.Errorf("Check with the budget taken = %v, want ErrBusy", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := h.Hash(ctx, "password-1"); !errors.Is(err, context.Canceled) {
		t.Errorf("Hash for a caller that gave up = %v, want context.Canceled", err)
	}
	release()
	if ok, err := h.Check(context.Background(), hash, "password-1"); err != nil || !ok {
		t.Errorf("Check with room = %v, %v, want true, nil", ok, err)
	}
}

// TestHasherBound: however many hash at once, no more than the budget's
// worth run together, and the rest wait their turn rather than fail while
// the wait allows.
func TestHasherBound(t *testing.T) {
	const slots, callers = 2, 12
	h := NewHasher(slots, time.Minute)
	var running, peak atomic.Int64
	var wg sync.WaitGroup
	for range callers {
		wg.Go(func() {
			release, err := h.acquire(context.Background(), argonMemory)
			if err != nil {
				t.Error(err)
				return
			}
			n := running.Add(1)
			for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
			}
			time.Sleep(5 * time.Millisecond)
			running.Add(-1)
			release()
		})
	}
	wg.Wait()
	if p := peak.Load(); p != slots {
		t.Errorf("at most %d hashes ran at once, want exactly %d (the budget)", p, slots)
	}
}

// TestHasherLargeStoredHash: a stored hash asking for more memory than the
// whole budget takes all of it, rather than waiting forever for room that
// can never be.
func TestHasherLargeStoredHash(t *testing.T) {
	h := NewHasher(1, 10*time.Second)
	big := "$argon2id$v=19$m=65536,t=1,p=1$c29tZXNhbHRzb21lc2FsdA$" + b64.EncodeToString(make([]byte, 32))
	if _, err := h.Check(context.Background(), big, "password-1"); err != nil {
		t.Errorf("Check of a 64 MiB hash on a 19 MiB budget = %v, want it run", err)
	}
}

// TestServiceBusy: Register and Login answer ErrBusy, not a slow success
// or an internal error, when hashing is at capacity, for known and unknown
// emails alike.
func TestServiceBusy(t *testing.T) {
	users := newMemUsers()
	now := func() time.Time { return testStart }
	h := NewHasher(1, 20*time.Millisecond)
	s := NewService(users, NewTokens(testSecret, testTTL, now), now, nil, WithHasher(h))
	if _, _, _, err := s.Register(context.Background(), "known@example.com", "password-1"); err != nil {
		t.Fatal(err)
	}
	release, err := h.acquire(context.Background(), argonMemory)
	if err != nil {
		t.Fatal(err)
	}
	defer release()
	if _, _, _, err := s.Register(context.Background(), "new@example.com", "password-1"); !errors.Is(err, ErrBusy) {
		t.Errorf("Register at capacity = %v, want ErrBusy", err)
	}
	for _, email := range []string{"known@example.com", "unknown@example.com"} {
		if _, _, _, err := s.Login(context.Background(), email, "password-1"); !errors.Is(err, ErrBusy) {
			t.Errorf("Login(%s) at capacity = %v, want ErrBusy", email, err)
		}
	}
}
