package grpcapi

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"google.golang.org/grpc/grpclog"

	"github.com/flashsale/flashsale/internal/telemetry"
)

// GRPCLog is a grpclog.LoggerV2 writing to l, for grpclog.SetLoggerV2:
// what grpc-go and grpc-gateway log through grpclog (connection states at
// info, a response the gateway could not write to a client gone away at
// error, once per such request) would otherwise go to stderr in its own
// format, with no bound. Info goes to debug; warnings and errors go to
// warn, held to perSecond lines a second (0: every line) with a summary of
// the rest, since none of them is the service's own failure (that is
// logged where it happens, with its cause); fatal to error, and then the
// process exits, as grpclog promises.
func GRPCLog(l *slog.Logger, perSecond int) grpclog.LoggerV2 {
	return &grpcLog{log: l, budget: telemetry.NewLogBudget(l, "grpc log", perSecond)}
}

type grpcLog struct {
	log    *slog.Logger
	budget *telemetry.LogBudget
}

func (g *grpcLog) write(level slog.Level, always bool, text func() string) {
	ctx := context.Background()
	if g.log.Enabled(ctx, level) && (always || g.budget.Allow(level)) {
		g.log.Log(ctx, level, text(), "source", "grpclog")
	}
}

func (g *grpcLog) Info(args ...any) {
	g.write(slog.LevelDebug, true, func() string { return fmt.Sprint(args...) })
}

func (g *grpcLog) Infoln(args ...any) {
	g.write(slog.LevelDebug, true, func() string { return fmt.Sprint(args...) })
}

func (g *grpcLog) Infof(format string, args ...any) {
	g.write(slog.LevelDebug, true, func() string { return fmt.Sprintf(format, args...) })
}

func (g *grpcLog) Warning(args ...any) {
	g.write(slog.LevelWarn, false, func() string { return fmt.Sprint(args...) })
}

func (g *grpcLog) Warningln(args ...any) {
	g.write(slog.LevelWarn, false, func() string { return fmt.Sprint(args...) })
}

func (g *grpcLog) Warningf(format string, args ...any) {
	g.write(slog.LevelWarn, false, func() string { return fmt.Sprintf(format, args...) })
}

func (g *grpcLog) Error(args ...any) {
	g.write(slog.LevelWarn, false, func() string { return fmt.Sprint(args...) })
}

func (g *grpcLog) Errorln(args ...any) {
	g.write(slog.LevelWarn, false, func() string { return fmt.Sprint(args...) })
}

func (g *grpcLog) Errorf(format string, args ...any) {
	g.write(slog.LevelWarn, false, func() string { return fmt.Sprintf(format, args...) })
}

func (g *grpcLog) Fatal(args ...any) {
	g.write(slog.LevelError, true, func() string { return fmt.Sprint(args...) })
	os.Exit(1)
}

func (g *grpcLog) Fatalln(args ...any) {
	g.write(slog.LevelError, true, func() string { return fmt.Sprint(args...) })
	os.Exit(1)
}

func (g *grpcLog) Fatalf(format string, args ...any) {
	g.write(slog.LevelError, true, func() string { return fmt.Sprintf(format, args...) })
	os.Exit(1)
}

// V reports whether verbosity level v is on: only 0, and only at debug.
func (g *grpcLog) V(v int) bool {
	return v <= 0 && g.log.Enabled(context.Background(), slog.LevelDebug)
}
