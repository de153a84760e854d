package httpapi

import (
	"bytes"
	"context"
	"log"
	"log/slog"

	"github.com/flashsale/flashsale/internal/telemetry"
)

// ErrorLog is an http.Server's ErrorLog writing to l. net/http writes a
// line there per failed TLS handshake, which a scanner, a client speaking
// plain text, or a load balancer's TCP check (connect, close) each cause,
// so it is held to perSecond lines a second (0: every line), the rest
// counted in a summary; a handshake that failed goes to debug, a panic in
// a handler to error whatever the budget says, the rest to warn.
func ErrorLog(l *slog.Logger, perSecond int) *log.Logger {
	return log.New(&errorLog{log: l, budget: telemetry.NewLogBudget(l, "http error log", perSecond)}, "", 0)
}

type errorLog struct {
	log    *slog.Logger
	budget *telemetry.LogBudget
}

var (
	panicServing   = []byte("http: panic serving")
	handshakeError = []byte("http: TLS handshake error")
)

// Write logs one line of net/http's (log.Logger writes each in one call).
func (e *errorLog) Write(p []byte) (int, error) {
	level, always := slog.LevelWarn, false
	switch {
	case bytes.HasPrefix(p, panicServing):
		level, always = slog.LevelError, true
	case bytes.HasPrefix(p, handshakeError):
		level = slog.LevelDebug
	}
	ctx := context.Background()
	if e.log.Enabled(ctx, level) && (always || e.budget.Allow(level)) {
		e.log.Log(ctx, level, string(bytes.TrimSuffix(p, []byte("\n"))))
	}
	return len(p), nil
}
