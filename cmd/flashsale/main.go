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
	"slices"
	"syscall"
	"time"

	"github.com/google/uuid"
	"google.golang.org/grpc/grpclog"

	"github.com/flashsale/flashsale/internal/app"
	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/grpcapi"
)

const usage = `usage: flashsale <command> [arguments]

commands:
  serve         run the gRPC API (GRPC_ADDR) and the REST/JSON API and web page (HTTP_ADDR)
  worker        write queued orders to PostgreSQL (ORDER_MODE=queue)
  reconcile [SALE_ID]
                rebuild the Redis gate state of SALE_ID, or of every open sale, from PostgreSQL
  migrate       apply the embedded database migrations to DATABASE_URL
  demo          seed an admin, a product and a sale open now; print commands to try
  create-admin  create or update the admin named by ADMIN_EMAIL and ADMIN_PASSWORD

help, -h, --help and <command> -h print this. Configuration comes from the
environment; see README.md.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	// The first signal starts a graceful shutdown; a second one ends the
	// process at once, as if no handler were installed.
	go func() {
		<-ctx.Done()
		stop()
	}()
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

// commands are the ones run dispatches; an unknown one is a usage error,
// found before the configuration is read.
var commands = []string{"serve", "worker", "reconcile", "migrate", "demo", "create-admin"}

// run is the whole program; main only turns its error into an exit code.
// It reads the configuration and hands it to package app, which builds and
// runs what the command needs.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errUsage
	}
	// Help needs no configuration: answer it before config.Load, which
	// fails without AUTH_JWT_SECRET.
	if wantsHelp(args) {
		fmt.Fprint(stdout, usage)
		return nil
	}
	if !slices.Contains(commands, args[0]) {
		return errUsage
	}
	cfg, err := config.Load()
	if err != nil {
		return err
	}
	log := slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: cfg.SlogLevel()}))
	// grpc-go and the REST gateway log through grpclog: into this log too,
	// within the access log's budget. Set before anything of gRPC runs.
	grpclog.SetLoggerV2(grpcapi.GRPCLog(log, cfg.LogAccessPerSecond))
	// The clock every rule is judged by: the wall clock, in UTC.
	now := func() time.Time { return time.Now().UTC() }
	switch args[0] {
	case "serve":
		a, err := app.New(ctx, cfg, log, app.WithClock(now))
		if err != nil {
			return err
		}
		return a.Run(ctx)
	case "worker":
		a, err := app.NewWorker(ctx, cfg, log, app.WithClock(now))
		if err != nil {
			return err
		}
		return a.Run(ctx)
	case "reconcile":
		return reconcile(ctx, cfg, log, now, args[1:], stdout)
	case "migrate":
		return app.Migrate(ctx, cfg, log)
	case "demo":
		return demo(ctx, cfg, log, now, stdout)
	case "create-admin":
		return createAdmin(ctx, cfg, log, now, stdout)
	}
	return errUsage
}

// reconcile rebuilds the gate state of one sale (args[0]), or of every open
// sale, from PostgreSQL (after a Redis loss, say).
func reconcile(ctx context.Context, cfg config.Config, log *slog.Logger, now func() time.Time, args []string, out io.Writer) error {
	if cfg.OrderMode() == config.OrderModeDirect {
		return errors.New("reconcile: ORDER_MODE=direct keeps no gate state")
	}
	var id uuid.UUID
	if len(args) > 0 {
		var err error
		if id, err = uuid.Parse(args[0]); err != nil {
			return fmt.Errorf("reconcile: %q is not a sale id", args[0])
		}
	}
	a, err := app.Open(ctx, cfg, log, app.WithClock(now))
	if err != nil {
		return err
	}
	defer func() {
		if err := a.Close(); err != nil {
			log.Warn("close", "err", err)
		}
	}()
	if id == uuid.Nil {
		if err := a.ReconcileOpen(ctx); err != nil {
			return err
		}
		_, err := fmt.Fprintln(out, "reconciled every open sale")
		return err
	}
	remaining, buyers, err := a.Reconcile(ctx, id)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "sale %s: %d left, %d buyers\n", id, remaining, buyers)
	return err
}

// wantsHelp reports whether args ask for usage: `help`, `-h` or `--help`
// as the command, or `-h`, `-help` or `--help` after any command.
func wantsHelp(args []string) bool {
	for i, a := range args {
		switch {
		case i == 0 && a == "help",
			a == "-h", a == "-help", a == "--help":
			return true
		}
	}
	return false
}
