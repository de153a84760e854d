package redis_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/redis"
)

func TestUserLimiter(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	l, err := redis.NewUserLimiter(c, 3, 0.01) // one token per 100s: no refill during the test
	if err != nil {
		t.Fatalf("NewUserLimiter: %v", err)
	}
	user := newID()
	for i := range 3 {
		ok, _, err := l.Allow(t.Context(), user)
		if err != nil {
			t.Fatalf("Allow: %v", err)
		}
		if !ok {
			t.Errorf("Allow #%d = false, want true", i+1)
		}
	}
	ok, retryAfter, err := l.Allow(t.Context(), user)
	if err != nil {
		t.Fatalf("Allow: %v", err)
	}
	if ok {
		t.Errorf("Allow over capacity = true, want false")
	}
	if retryAfter <= 0 {
		t.Errorf("retryAfter = %v, want > 0", retryAfter)
	}
	// Another user has a bucket of their own.
	if ok, _, err := l.Allow(t.Context(), newID()); err != nil || !ok {
		t.Errorf("Allow for another user = %v, %v, want true, nil", ok, err)
	}
}

func TestNewUserLimiterInvalid(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		capacity int
		rate     float64
	}{{0, 1}, {1, 0}, {-1, 1}, {1, -1}} {
		if _, err := redis.NewUserLimiter(nil, tt.capacity, tt.rate); err == nil {
			t.Errorf("NewUserLimiter(%d, %v) error = nil, want an error", tt.capacity, tt.rate)
		}
	}
}

// TestLimiterKeys: buckets are per key and per limiter name.
func TestLimiterKeys(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	a, err := redis.NewLimiter(c, "a", 2, 0.01)
	if err != nil {
		t.Fatal(err)
	}
	b, err := redis.NewLimiter(c, "b", 2, 0.01)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if ok, _, err := a.Allow(t.Context(), "192.0.2.1"); err != nil || !ok {
			t.Fatalf("a.Allow #%d = %v, %v, want true", i+1, ok, err)
		}
	}
	if ok, wait, err := a.Allow(t.Context(), "192.0.2.1"); err != nil || ok || wait <= 0 {
		t.Errorf("a.Allow over capacity = %v, %v, %v, want false with a wait", ok, wait, err)
	}
	if ok, _, err := a.Allow(t.Context(), "192.0.2.2"); err != nil || !ok {
		t.Errorf("a.Allow for another key = %v, %v, want true", ok, err)
	}
	if ok, _, err := b.Allow(t.Context(), "192.0.2.1"); err != nil || !ok {
		t.Errorf("b.Allow for the same key = %v, %v, want true (a bucket of its own)", ok, err)
	}
}

// TestLoginBackoff: free attempts, then one attempt at a time with a
// doubling delay, however many arrive at once; a success starts over.
func TestLoginBackoff(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	b, err := redis.NewLoginBackoff(c, 2, 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	begin := func(account string) time.Duration {
		t.Helper()
		wait, err := b.Begin(t.Context(), account)
		if err != nil {
			t.Fatalf("Begin: %v", err)
		}
		return wait
	}
	for i := range 2 {
		if w := begin("alice"); w != 0 {
			t.Fatalf("free attempt %d waits %v, want 0", i+1, w)
		}
	}
	// Past the free attempts, 20 at once: one goes ahead, the rest wait
	// up to the first delay.
	var mu sync.Mutex
	var ahead int
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			w, err := b.Begin(t.Context(), "alice")
			if err != nil {
				t.Error(err)
				return
			}
			if w > time.Second {
				t.Errorf("wait %v, want at most the first delay, 1s", w)
			}
			mu.Lock()
			defer mu.Unlock()
			if w == 0 {
				ahead++
			}
		})
	}
	wg.Wait()
	if ahead != 1 {
		t.Fatalf("%d of 20 simultaneous attempts went ahead, want 1", ahead)
	}
	if w := begin("bob"); w != 0 {
		t.Errorf("another account waits %v, want 0", w)
	}
	time.Sleep(1100 * time.Millisecond)
	if w := begin("alice"); w != 0 {
		t.Fatalf("attempt after the delay waits %v, want 0", w)
	}
	if w := begin("alice"); w <= time.Second || w > 2*time.Second {
		t.Errorf("next delay = %v, want the doubled one, in (1s, 2s]", w)
	}
	if err := b.Succeeded(t.Context(), "alice"); err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		if w := begin("alice"); w != 0 {
			t.Errorf("attempt %d after a success waits %v, want 0", i+1, w)
		}
	}
}

func TestNewLoginBackoffInvalid(t *testing.T) {
	t.Parallel()
	if _, err := redis.NewLoginBackoff(nil, -1, time.Minute); err == nil {
		t.Error("NewLoginBackoff(-1 free) error = nil")
	}
	if _, err := redis.NewLoginBackoff(nil, 5, time.Millisecond); err == nil {
		t.Error("NewLoginBackoff(1ms longest) error = nil")
	}
}

// TestLimiterTakeMany: one pipeline takes from many buckets, each in full:
// a take that overdraws a bucket leaves it in debt, which Allow, sharing
// the bucket, then refuses until it has refilled past.
func TestLimiterTakeMany(t *testing.T) {
	t.Parallel()
	c := newClient(t)
	l, err := redis.NewLimiter(c, "ip", 5, 0.01) // no refill to speak of during the test
	if err != nil {
		t.Fatal(err)
	}
	// Many keys, so that on a cluster they fall on every master.
	var takes []redis.Take
	for i := range 50 {
		takes = append(takes, redis.Take{Key: fmt.Sprintf("192.0.2.%d", i), N: 3})
	}
	for i, b := range l.TakeMany(t.Context(), takes) {
		if b.Err != nil || b.Wait != 0 || b.Tokens < 1.99 || b.Tokens > 2.01 {
			t.Fatalf("take 3 of 5 from %s = %+v, want about 2 left, no wait", takes[i].Key, b)
		}
	}
	got := l.TakeMany(t.Context(), []redis.Take{{Key: "192.0.2.0", N: 4}, {Key: "192.0.2.1", N: 1}})
	if b := got[0]; b.Err != nil || b.Tokens > -1.99 || b.Tokens < -2.01 || b.Wait < 299*time.Second || b.Wait > 301*time.Second {
		t.Errorf("take 4 of 2 = %+v, want about 2 in debt and a wait of 300s (3 tokens at 0.01/s)", b)
	}
	if b := got[1]; b.Err != nil || b.Tokens < 0.99 || b.Tokens > 1.01 || b.Wait != 0 {
		t.Errorf("take 1 of 2 from another key = %+v, want about 1 left, no wait", b)
	}
	if ok, wait, err := l.Allow(t.Context(), "192.0.2.0"); err != nil || ok || wait < 299*time.Second {
		t.Errorf("Allow on the bucket in debt = %v, %v, %v; want refused for about 300s", ok, wait, err)
	}
	if got := l.TakeMany(t.Context(), nil); len(got) != 0 {
		t.Errorf("TakeMany(nil) = %v, want none", got)
	}
}
