// Command flashsale is the flash-sale backend: `serve` runs the gRPC API and
// its REST facade, `migrate` brings the database schema up to date, `demo`
// seeds a sale open now, and `create-admin` makes a user an admin.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/telemetry"
)

const usage = `usage: flashsale <command>

commands:
  serve         run the gRPC API (GRPC_ADDR) and the REST/JSON API and web page (HTTP_ADDR)
  worker        write queued orders to PostgreSQL (ORDER_MODE=queue)
  reconcile     rebuild the Redis gate state of SALE_ID, or of every open sale, from PostgreSQL
  migrate       apply the embedded database migrations to DATABASE_URL
  demo          seed an admin, a product and a sale open now; print commands to try
  create-admin  create or update the admin named by ADMIN_EMAIL and ADMIN_PASSWORD

Configuration comes from the environment; see README.md.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout)
	stop()
	if errors.Is(err, errUsage) {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "flashsale:", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

// run is the whole program; main only turns its error into an exit code.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	log := newLogger(cfg.LogLevel)
	// Off unless OTEL_* configure it; then tp is nil and nothing is traced.
	tracing, err := telemetry.Setup(ctx, cfg)
	if err != nil {
		return err
	}
	defer flushTraces(tracing, log)
	tp := tracing.Provider()
	switch args[0] {
	case "serve":
		return serve(ctx, cfg, log, tp)
	case "worker":
		return worker(ctx, cfg, log, tp)
	case "reconcile":
		return reconcile(ctx, cfg, log, args[1:], stdout)
	case "migrate":
		return migrate(ctx, cfg, log)
	case "demo":
		return demo(ctx, cfg, log, stdout)
	case "create-admin":
		return createAdmin(ctx, cfg, log, stdout)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
		return nil
	}
	return errUsage
}

func newLogger(level string) *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(level)) // validated by config.Load
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}

// flushTraces sends the spans still buffered, giving up after a few seconds.
func flushTraces(t *telemetry.Tracing, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := t.Shutdown(ctx); err != nil {
		log.Warn("tracing shutdown", "err", err)
	}
}

// now is the clock every rule is judged by: the wall clock, in UTC.
func now() time.Time { return time.Now().UTC() }
