package telemetry

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// records is a slog handler keeping every record.
type records struct {
	mu  sync.Mutex
	got []slog.Record
}

func (r *records) Enabled(context.Context, slog.Level) bool { return true }
func (r *records) Handle(_ context.Context, rec slog.Record) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.got = append(r.got, rec.Clone())
	return nil
}
func (r *records) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *records) WithGroup(string) slog.Handler      { return r }

func (r *records) all() []slog.Record {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]slog.Record(nil), r.got...)
}

func attr(rec slog.Record, key string) slog.Value {
	var v slog.Value
	rec.Attrs(func(a slog.Attr) bool {
		if a.Key == key {
			v = a.Value
			return false
		}
		return true
	})
	return v
}

func TestLogBudget(t *testing.T) {
	var h records
	b := NewLogBudget(slog.New(&h), "access log", 3)
	now := time.Unix(1_000_000, 0)
	b.now = func() time.Time { return now }

	allowed := 0
	for i := range 10 {
		level := slog.LevelInfo
		if i == 9 {
			level = slog.LevelWarn // suppressed too: the summary must show at warn
		}
		if b.Allow(level) {
			allowed++
		}
	}
	if allowed != 3 {
		t.Errorf("allowed %d of 10 lines in one second, want 3", allowed)
	}
	if got := h.all(); len(got) != 0 {
		t.Fatalf("a summary was written before the second ended: %v", got)
	}

	now = now.Add(999 * time.Millisecond) // same second
	if b.Allow(slog.LevelInfo) {
		t.Error("a line over the budget was allowed later in the same second")
	}
	now = now.Add(time.Millisecond) // the next second
	if !b.Allow(slog.LevelInfo) {
		t.Fatal("the first line of a new second was suppressed")
	}
	got := h.all()
	if len(got) != 1 {
		t.Fatalf("got %d records, want the one summary", len(got))
	}
	if got[0].Message != "access log: lines suppressed" || got[0].Level != slog.LevelWarn ||
		attr(got[0], "suppressed").Int64() != 8 || attr(got[0], "per_second").Int64() != 3 {
		t.Errorf("summary = %s %q suppressed=%v per_second=%v, want WARN \"access log: lines suppressed\" 8, 3",
			got[0].Level, got[0].Message, attr(got[0], "suppressed"), attr(got[0], "per_second"))
	}

	// A second with nothing suppressed writes no summary, and the next
	// summary is at info when only info lines were dropped.
	for range 3 {
		b.Allow(slog.LevelInfo) // 2 allowed, 1 suppressed
	}
	now = now.Add(time.Second)
	b.Allow(slog.LevelDebug)
	got = h.all()
	if len(got) != 2 || got[1].Level != slog.LevelInfo || attr(got[1], "suppressed").Int64() != 1 {
		t.Errorf("second summary: got %d records, last %v", len(got), got[len(got)-1])
	}
	now = now.Add(time.Second)
	b.Allow(slog.LevelInfo)
	if n := len(h.all()); n != 2 {
		t.Errorf("a summary was written for a second that suppressed nothing (%d records)", n)
	}
}

// TestLogBudgetConcurrent: callers racing over several seconds are let
// through at most perSecond a second, and every line is either let through
// or counted in a summary.
func TestLogBudgetConcurrent(t *testing.T) {
	var h records
	b := NewLogBudget(slog.New(&h), "x", 5)
	var clock atomic.Int64
	clock.Store(2_000_000)
	b.now = func() time.Time { return time.Unix(clock.Load(), 0) }

	const seconds, callers, perCaller = 4, 8, 500
	var allowed atomic.Int64
	for range seconds {
		var wg sync.WaitGroup
		for range callers {
			wg.Go(func() {
				for range perCaller {
					if b.Allow(slog.LevelInfo) {
						allowed.Add(1)
					}
				}
			})
		}
		wg.Wait()
		clock.Add(1)
	}
	b.Allow(slog.LevelInfo) // flushes the last second's summary
	var summarized int64
	for _, r := range h.all() {
		summarized += attr(r, "suppressed").Int64()
	}
	if got := allowed.Load(); got != seconds*5 {
		t.Errorf("allowed %d lines over %d seconds, want %d", got, seconds, seconds*5)
	}
	if total := allowed.Load() + 1 + summarized; total != seconds*callers*perCaller+1 {
		t.Errorf("allowed+summarized = %d, want every one of the %d lines", total, seconds*callers*perCaller+1)
	}
}

func TestLogBudgetUnlimited(t *testing.T) {
	var buf bytes.Buffer
	b := NewLogBudget(slog.New(slog.NewTextHandler(&buf, nil)), "x", 0)
	for range 1000 {
		if !b.Allow(slog.LevelInfo) {
			t.Fatal("a budget of 0 suppressed a line")
		}
	}
	if strings.Contains(buf.String(), "suppressed") {
		t.Errorf("unlimited budget wrote a summary: %s", buf.String())
	}
}
