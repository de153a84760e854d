package grpcapi

import (
	"context"
	"testing"
	"time"
)

func TestDefaultDeadline(t *testing.T) {
	intercept := defaultDeadline(time.Minute)
	var got time.Time
	handler := func(ctx context.Context, _ any) (any, error) {
		got, _ = ctx.Deadline()
		return nil, nil
	}

	before := time.Now()
	if _, err := intercept(context.Background(), nil, nil, handler); err != nil {
		t.Fatal(err)
	}
	if got.Before(before.Add(time.Minute)) || got.After(time.Now().Add(time.Minute)) {
		t.Errorf("deadline without one set = %v, want about a minute from the call", got)
	}

	own := time.Now().Add(time.Hour)
	ctx, cancel := context.WithDeadline(context.Background(), own)
	defer cancel()
	if _, err := intercept(ctx, nil, nil, handler); err != nil {
		t.Fatal(err)
	}
	if !got.Equal(own) {
		t.Errorf("deadline with the client's own = %v, want it kept (%v)", got, own)
	}
}
