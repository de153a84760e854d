package sale

import (
	"errors"
	"testing"
	"time"
)

var (
	start = time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	end   = start.Add(time.Hour)
	s     = Sale{StartsAt: start, EndsAt: end}
)

func TestStateAt(t *testing.T) {
	tests := []struct {
		name      string
		now       time.Time
		remaining int32
		want      State
	}{
		{"start-1ns", start.Add(-time.Nanosecond), 10, StateUpcoming},
		{"start", start, 10, StateActive},
		{"end-1ns", end.Add(-time.Nanosecond), 10, StateActive},
		{"end", end, 10, StateEnded},
		{"start, sold out", start, 0, StateSoldOut},
		{"end-1ns, sold out", end.Add(-time.Nanosecond), 0, StateSoldOut},
		{"before start, no stock", start.Add(-time.Hour), 0, StateUpcoming},
		{"after end, no stock", end.Add(time.Hour), 0, StateEnded},
		{"start in another zone", start.In(time.FixedZone("UTC+5", 5*3600)), 1, StateActive},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := s.StateAt(tt.now, tt.remaining); got != tt.want {
				t.Errorf("StateAt(%v, %d) = %v, want %v", tt.now, tt.remaining, got, tt.want)
			}
		})
	}
}

func TestOpenAt(t *testing.T) {
	tests := []struct {
		now  time.Time
		want bool
	}{
		{start.Add(-time.Nanosecond), false},
		{start, true},
		{end.Add(-time.Nanosecond), true},
		{end, false},
	}
	for _, tt := range tests {
		if got := s.OpenAt(tt.now); got != tt.want {
			t.Errorf("OpenAt(%v) = %v, want %v", tt.now, got, tt.want)
		}
	}
}

func TestValidateWindow(t *testing.T) {
	now := start
	tests := []struct {
		name       string
		start, end time.Time
		want       error
	}{
		{"ok, open now", start, end, nil},
		{"ok, in the future", end, end.Add(time.Hour), nil},
		{"ok, started earlier, ends later", start.Add(-time.Hour), end, nil},
		{"end equals start", end, end, ErrInvalidWindow},
		{"end before start", end, start, ErrInvalidWindow},
		{"ends in the past", start.Add(-2 * time.Hour), start.Add(-time.Hour), ErrEndsInPast},
		{"ends exactly now", start.Add(-time.Hour), now, ErrEndsInPast},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidateWindow(tt.start, tt.end, now); !errors.Is(got, tt.want) {
				t.Errorf("ValidateWindow = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestCurrent(t *testing.T) {
	past := Sale{StartsAt: start.Add(-3 * time.Hour), EndsAt: start.Add(-2 * time.Hour)}
	older := Sale{StartsAt: start.Add(-5 * time.Hour), EndsAt: start.Add(-4 * time.Hour)}
	open := Sale{StartsAt: start, EndsAt: end}
	next := Sale{StartsAt: end.Add(time.Hour), EndsAt: end.Add(2 * time.Hour)}
	later := Sale{StartsAt: end.Add(3 * time.Hour), EndsAt: end.Add(4 * time.Hour)}
	tests := []struct {
		name   string
		sales  []Sale
		want   Sale
		wantOK bool
	}{
		{"none", nil, Sale{}, false},
		{"open wins over everything", []Sale{past, later, open, next}, open, true},
		{"else the next to start", []Sale{later, past, next}, next, true},
		{"else the latest to end", []Sale{older, past}, past, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := Current(tt.sales, start)
			if ok != tt.wantOK || got != tt.want {
				t.Errorf("Current = %v, %v; want %v, %v", got, ok, tt.want, tt.wantOK)
			}
		})
	}
}
