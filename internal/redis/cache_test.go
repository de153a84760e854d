package redis_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/redis"
)

func loader(calls *atomic.Int64, value string, found bool) func(context.Context) ([]byte, bool, error) {
	return func(context.Context) ([]byte, bool, error) {
		calls.Add(1)
		if !found {
			return nil, false, nil
		}
		return []byte(value), true, nil
	}
}

func mustGet(t testing.TB, k *redis.Cache, key string, load func(context.Context) ([]byte, bool, error)) (string, bool) {
	t.Helper()
	v, found, err := k.Get(t.Context(), key, time.Minute, time.Minute, load, asString)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if !found {
		return "", false
	}
	return v.(string), true
}

func asString(b []byte) (any, error) { return string(b), nil }

func TestCacheHitMiss(t *testing.T) {
	t.Parallel()
	k := redis.NewCache(newClient(t))
	var calls atomic.Int64
	load := loader(&calls, "widget", true)
	for i := range 3 {
		v, found := mustGet(t, k, "product:1", load)
		if v != "widget" || !found {
			t.Errorf("Get #%d = %q, %v, want widget, true", i+1, v, found)
		}
	}
	if got := calls.Load(); got != 1 {
		t.Errorf("load calls = %d, want 1", got)
	}
	if hits, misses := k.Stats(); hits != 2 || misses != 1 {
		t.Errorf("Stats = %d hits, %d misses, want 2, 1", hits, misses)
	}
}

func TestCacheNegative(t *testing.T) {
	t.Parallel()
	k := redis.NewCache(newClient(t))
	var calls atomic.Int64
	load := loader(&calls, "", false)
	for i := range 2 {
		if v, found := mustGet(t, k, "product:missing", load); v != "" || found {
			t.Errorf("Get #%d = %q, %v, want \"\", false", i+1, v, found)
		}
	}
	if got := calls.Load(); got != 1 {
		t.Errorf("load calls = %d, want 1 (not-found is remembered)", got)
	}
	// Without a negative TTL a not-found is not remembered.
	for range 2 {
		if _, _, err := k.Get(t.Context(), "product:other", time.Minute, 0, load, asString); err != nil {
			t.Fatalf("Get: %v", err)
		}
	}
	if got := calls.Load(); got != 3 {
		t.Errorf("load calls = %d, want 3", got)
	}
}

// TestCacheInvalidate: one process invalidates, another one (a second client
// on the same keys) gets the push and loads again.
func TestCacheInvalidate(t *testing.T) {
	t.Parallel()
	prefix := newPrefix()
	a := redis.NewCache(newClientPrefix(t, prefix))
	b := redis.NewCache(newClientPrefix(t, prefix))
	var calls atomic.Int64
	mustGet(t, a, "product:1", loader(&calls, "old", true))
	// Read a few times, so that the value is held in this process's memory
	// (rueidis's cache, then the near cache), whose copies the
	// invalidation must reach.
	for range 3 {
		if v, _ := mustGet(t, a, "product:1", loader(&calls, "new", true)); v != "old" {
			t.Fatalf("Get = %q, want old (cached)", v)
		}
	}

	if err := b.Invalidate(t.Context(), "product:1", "product:2"); err != nil {
		t.Fatalf("Invalidate: %v", err)
	}
	var v string
	for range 5000 {
		if v, _ = mustGet(t, a, "product:1", loader(&calls, "new", true)); v == "new" {
			break
		}
		time.Sleep(time.Millisecond)
	}
	if v != "new" {
		t.Errorf("Get after Invalidate = %q, want new", v)
	}
	if got := calls.Load(); got != 2 {
		t.Errorf("load calls = %d, want 2", got)
	}
}

func TestCacheConcurrent(t *testing.T) {
	t.Parallel()
	k := redis.NewCache(newClient(t))
	var calls atomic.Int64
	load := loader(&calls, "widget", true)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for range 50 {
		wg.Go(func() {
			<-start
			v, found, err := k.Get(context.Background(), "product:hot", time.Minute, time.Minute, load, asString)
			if err != nil || !found || v != "widget" {
				t.Errorf("Get = %q, %v, %v, want widget, true, nil", v, found, err)
			}
		})
	}
	close(start)
	wg.Wait()
	if hits, misses := k.Stats(); hits+misses != 50 {
		t.Errorf("hits + misses = %d, want 50", hits+misses)
	}
	if got := calls.Load(); got < 1 || got > 50 {
		t.Errorf("load calls = %d, want 1..50", got)
	}
}

// TestCacheLoadOutlivesFirstCaller: callers that join a load share it, so
// the caller that started it going away (its context cancelled, as when a
// client hangs up) must not fail the others. The load here honours its
// context as a database read does, and finishes only after the first
// caller has gone.
func TestCacheLoadOutlivesFirstCaller(t *testing.T) {
	t.Parallel()
	k := redis.NewCache(newClient(t))
	started, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int64
	load := func(ctx context.Context) ([]byte, bool, error) {
		if calls.Add(1) == 1 {
			close(started)
		}
		select {
		case <-release:
			return []byte("widget"), true, nil
		case <-ctx.Done():
			return nil, false, ctx.Err()
		}
	}

	firstCtx, hangUp := context.WithCancel(context.Background())
	first := make(chan error, 1)
	go func() {
		_, _, err := k.Get(firstCtx, "product:shared", time.Minute, time.Minute, load, asString)
		first <- err
	}()
	<-started
	type result struct {
		v     any
		found bool
		err   error
	}
	second := make(chan result, 1)
	go func() {
		v, found, err := k.Get(context.Background(), "product:shared", time.Minute, time.Minute, load, asString)
		second <- result{v, found, err}
	}()
	time.Sleep(100 * time.Millisecond) // the second caller joins the load
	hangUp()
	time.Sleep(50 * time.Millisecond) // a load on the first caller's context ends here
	close(release)

	r := <-second
	if r.err != nil || !r.found || r.v != "widget" {
		t.Errorf("joined caller's Get = %v, %v, %v; want widget, true, nil (the first caller's cancellation must not fail it)", r.v, r.found, r.err)
	}
	<-first
	if got := calls.Load(); got != 1 {
		t.Errorf("load calls = %d, want 1 (the second caller joined the first's load)", got)
	}
}
