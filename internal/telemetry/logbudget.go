package telemetry

import (
	"context"
	"log/slog"
	"math"
	"sync/atomic"
	"time"
)

// LogBudget bounds a log that writes a line per event, so that a load
// (a rush, a scanner, a flood of health checks) cannot turn it into
// gigabytes: at most perSecond lines in each second of the wall clock. The
// lines over the budget are counted, not written, and the first line let
// through in a later second is preceded by one that says how many were
// suppressed since the last such summary, so a reader knows lines are
// missing and how many. The summary is written at info, or at the highest
// level among the lines it stands for if that is higher, so it shows
// wherever they would have.
//
// Ask Allow before building a line's fields: a suppressed line then costs
// a clock read and an atomic add.
//
// A nil *LogBudget lets every line through.
type LogBudget struct {
	log       *slog.Logger
	what      string
	perSecond uint32
	now       func() time.Time

	// window is the second being counted (unix seconds, low 32 bits) in
	// its high half and the lines let through in it in the low half, so
	// one compare-and-swap moves both.
	window     atomic.Uint64
	suppressed atomic.Int64
	// worst is the highest level among the lines suppressed since the
	// last summary.
	worst atomic.Int64
}

// NewLogBudget returns a budget of perSecond lines a second for the log
// named what ("access log"), whose summaries go to log; nil, which lets
// every line through, when perSecond is 0 or less.
func NewLogBudget(log *slog.Logger, what string, perSecond int) *LogBudget {
	if perSecond <= 0 {
		return nil
	}
	b := &LogBudget{log: log, what: what, perSecond: uint32(min(perSecond, math.MaxUint32)), now: time.Now}
	b.worst.Store(math.MinInt64)
	return b
}

// Allow reports whether a line at level may be written now; when it may,
// and lines were suppressed before it, it writes their summary first.
func (b *LogBudget) Allow(level slog.Level) bool {
	if b == nil {
		return true
	}
	sec := uint32(b.now().Unix())
	for {
		old := b.window.Load()
		s, n := uint32(old>>32), uint32(old)
		next, fresh := old+1, false
		switch {
		// A later second; a goroutine whose clock read is a little
		// older than the window's counts in the window.
		case int32(sec-s) > 0:
			next, fresh = uint64(sec)<<32|1, true
		case n >= b.perSecond:
			b.suppress(level)
			return false
		}
		if b.window.CompareAndSwap(old, next) {
			if fresh {
				b.summarize()
			}
			return true
		}
	}
}

func (b *LogBudget) suppress(level slog.Level) {
	b.suppressed.Add(1)
	for {
		w := b.worst.Load()
		if int64(level) <= w || b.worst.CompareAndSwap(w, int64(level)) {
			return
		}
	}
}

// summarize writes how many lines were suppressed since the last summary,
// if any were.
func (b *LogBudget) summarize() {
	n := b.suppressed.Swap(0)
	if n == 0 {
		return
	}
	level := slog.Level(max(b.worst.Swap(math.MinInt64), int64(slog.LevelInfo)))
	// Not the context of the line about to be written: the summary is
	// about other calls.
	b.log.LogAttrs(context.Background(), level, b.what+": lines suppressed",
		slog.Int64("suppressed", n), slog.Int("per_second", int(b.perSecond)))
}
