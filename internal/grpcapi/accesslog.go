package grpcapi

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/peer"
	"google.golang.org/grpc/status"

	"github.com/flashsale/flashsale/internal/telemetry"
)

// accessLog writes a line per finished call ("finished call"), at a level
// by how the call ended (accessLevel), within a budget of lines a second
// (LOG_ACCESS_PER_SECOND) that the server's failures are never held to:
//
//   - error: Internal, Unknown, DataLoss, Unimplemented; always written
//     (toStatus and the recovery handler log the cause and the panic
//     beside it);
//   - warn: Unavailable because a dependency is down or an order's fate is
//     unknown, always written; DeadlineExceeded, within the budget (an
//     overloaded server times every caller out);
//   - debug: the refusals a sale answers as a matter of course, which
//     flashsale_order_outcomes_total and flashsale_rate_limited_total
//     count: SOLD_OUT, ALREADY_ORDERED, SALE_NOT_ACTIVE, rate limits,
//     QUEUE_BUSY, AUTH_BUSY, ORDER_IN_PROGRESS (FailedPrecondition,
//     AlreadyExists, ResourceExhausted and those Unavailable reasons);
//   - info: everything else: OK, bad input, NotFound, Unauthenticated,
//     Canceled, and streams ended by shutdown.
//
// It is its own interceptor rather than go-grpc-middleware's logging one,
// which builds each call's fields when the call starts, before anything
// can tell whether the line will be written; at 20,000 calls a second
// that was a tenth of the server's CPU. Here a line that is disabled or
// over the budget costs a status check and an atomic add, and its fields
// are never built. The field names are the ones that interceptor wrote.
type accessLog struct {
	log    *slog.Logger
	budget *telemetry.LogBudget // nil: every line
}

// newAccessLog logs to log, at most perSecond lines a second but for the
// failures (0: every call).
func newAccessLog(log *slog.Logger, perSecond int) *accessLog {
	return &accessLog{log: log, budget: telemetry.NewLogBudget(log, "access log", perSecond)}
}

func (a *accessLog) unary(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
	start := time.Now()
	resp, err := handler(ctx, req)
	a.finished(ctx, info.FullMethod, "unary", start, err)
	return resp, err
}

func (a *accessLog) stream(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
	start := time.Now()
	err := handler(srv, ss)
	kind := "bidi_stream"
	switch {
	case info.IsServerStream && !info.IsClientStream:
		kind = "server_stream"
	case info.IsClientStream && !info.IsServerStream:
		kind = "client_stream"
	}
	a.finished(ss.Context(), info.FullMethod, kind, start, err)
	return err
}

// finished writes the line of a call that ended with err, if its level is
// enabled and, unless it is a failure, the budget has room.
func (a *accessLog) finished(ctx context.Context, method, kind string, start time.Time, err error) {
	code := status.Code(err)
	level, always := accessLevel(code, err)
	if !a.log.Enabled(ctx, level) || !always && !a.budget.Allow(level) {
		return
	}
	elapsed := time.Since(start)
	service, name, _ := strings.Cut(strings.TrimPrefix(method, "/"), "/")
	attrs := make([]slog.Attr, 0, 8)
	attrs = append(attrs,
		slog.String("grpc.service", service),
		slog.String("grpc.method", name),
		slog.String("grpc.method_type", kind),
		slog.String("grpc.code", code.String()),
	)
	if err != nil {
		attrs = append(attrs, slog.String("grpc.error", status.Convert(err).Message()))
	}
	if p, ok := peer.FromContext(ctx); ok && p.Addr != nil {
		attrs = append(attrs, slog.String("peer.address", p.Addr.String()))
	}
	attrs = append(attrs, slog.Float64("grpc.time_ms", float64(elapsed.Microseconds())/1000))
	a.log.LogAttrs(ctx, level, "finished call", attrs...)
}

// accessLevel is the level of the line of a call that ended with code
// (err), and whether it is written whatever the budget says.
func accessLevel(code codes.Code, err error) (level slog.Level, always bool) {
	switch code {
	case codes.Internal, codes.Unknown, codes.DataLoss, codes.Unimplemented:
		return slog.LevelError, true
	case codes.FailedPrecondition, codes.AlreadyExists, codes.ResourceExhausted:
		return slog.LevelDebug, false
	case codes.DeadlineExceeded:
		return slog.LevelWarn, false
	case codes.Unavailable:
		if errors.Is(err, errShuttingDown) {
			return slog.LevelInfo, false
		}
		switch outcome(err) {
		case ReasonQueueBusy, ReasonAuthBusy, ReasonOrderInProgress:
			return slog.LevelDebug, false
		}
		return slog.LevelWarn, true
	}
	return slog.LevelInfo, false
}
