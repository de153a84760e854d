package redis_test

import (
	"testing"

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
