package postgres

import (
	"context"
	"strings"

	"github.com/exaring/otelpgx"
	"github.com/jackc/pgx/v5/pgxpool"
	"go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/trace"
)

// Option changes how New connects.
type Option func(*pgxpool.Config)

// WithTracerProvider traces every query, batch and pool acquire made
// within a traced call (a span in its context) as a child span named after
// its sqlc query (OrderInsertBatch, SaleGet, ...). The statement is
// recorded, its arguments never. A nil tp adds nothing.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(cfg *pgxpool.Config) {
		if tp == nil {
			return
		}
		cfg.ConnConfig.Tracer = otelpgx.NewTracer(
			otelpgx.WithTracerProvider(tp),
			otelpgx.WithMeterProvider(noop.NewMeterProvider()), // the metrics are Prometheus's
			otelpgx.WithSpanNameCtxFunc(queryName),
		)
	}
}

// queryName names a query's span: the name sqlc gives it in its leading
// "-- name: SaleGet :one" comment, else its first word (SELECT, BEGIN, ...).
func queryName(ctx context.Context, sql string) string {
	if rest, ok := strings.CutPrefix(sql, "-- name: "); ok {
		if name, _, ok := strings.Cut(rest, " "); ok && name != "" {
			return name
		}
	}
	return otelpgx.SQLOperationName(ctx, sql)
}
