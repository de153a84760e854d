// Package postgres is the store: it runs the sqlc queries in
// internal/postgres/dbsqlc, turns their rows into domain types, and is the only
// package that knows PostgreSQL errors, which it maps to domain errors.
package postgres

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashsale/flashsale/internal/auth"
	"github.com/flashsale/flashsale/internal/order"
	"github.com/flashsale/flashsale/internal/postgres/dbsqlc"
	"github.com/flashsale/flashsale/internal/product"
	"github.com/flashsale/flashsale/internal/sale"
)

// Page sizes of the List methods.
const (
	// DefaultPageSize is used when a list asks for zero or fewer rows.
	DefaultPageSize = 100
	// MaxPageSize caps the rows a list returns.
	MaxPageSize = 1000
)

// Store reads and writes users, products, sales and orders in PostgreSQL.
// It is safe for concurrent use.
type Store struct {
	pool      *pgxpool.Pool
	q         *dbsqlc.Queries
	users     *userLoader
	directory *userDirectory
}

// New connects a pool to databaseURL (a postgres:// URL or key=value DSN; pool
// settings such as pool_max_conns go in it too) and pings the server, so a
// wrong URL fails here rather than on the first request.
func New(ctx context.Context, databaseURL string, opts ...Option) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(databaseURL)
	if err != nil {
		return nil, fmt.Errorf("postgres config: %w", err)
	}
	cfg.AfterConnect = registerUUID
	for _, o := range opts {
		o(cfg)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres config: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres connect: %w", err)
	}
	q := dbsqlc.New(pool)
	return &Store{pool: pool, q: q, users: newUserLoader(q), directory: newUserDirectory()}, nil
}

// Close waits for queries in flight and closes every connection.
func (s *Store) Close() {
	s.users.close()
	s.pool.Close()
}

// PoolStats is the connection pool's standing, for metrics.
func (s *Store) PoolStats() *pgxpool.Stat {
	return s.pool.Stat()
}

// Ping checks that the database answers, for readiness probes.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres ping: %w", err)
	}
	return nil
}

// violation is a constraint violation: its SQLSTATE and constraint name.
type violation struct{ code, constraint string }

// SQLSTATEs of the integrity constraint violations the domain cares about.
const (
	uniqueViolation     = "23505"
	exclusionViolation  = "23P01"
	foreignKeyViolation = "23503"
	checkViolation      = "23514"
)

// constraintErrors maps the violations that mean something to the domain to
// its errors. The constraint names are those in sql/migrations.
var constraintErrors = map[violation]error{
	{uniqueViolation, "users_email_key"}:                 auth.ErrEmailTaken,
	{foreignKeyViolation, "flash_sales_product_id_fkey"}: product.ErrNotFound,
	{checkViolation, "flash_sales_window_valid"}:         sale.ErrInvalidWindow,
	{exclusionViolation, "flash_sales_no_overlap"}:       sale.ErrOverlap,
	{uniqueViolation, "orders_one_per_user_per_sale"}:    order.ErrAlreadyOrdered,
	// No sale with this id, or one that sells another product.
	{foreignKeyViolation, "orders_sale_product_fkey"}: sale.ErrNotFound,
	{foreignKeyViolation, "orders_user_id_fkey"}:      auth.ErrUserNotFound,
}

// interpretError is the one place PostgreSQL errors become domain errors: a
// violation listed in constraintErrors returns the domain's sentinel as is;
// anything else comes back wrapped with op.
func interpretError(op string, err error) error {
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		if domainErr, ok := constraintErrors[violation{pgErr.Code, pgErr.ConstraintName}]; ok {
			return domainErr
		}
	}
	if unreachable(err) {
		err = &unavailableError{err}
	}
	return fmt.Errorf("%s: %w", op, err)
}

// pageSize turns a requested page size into a LIMIT.
func pageSize(n int) int32 {
	switch {
	case n <= 0:
		return DefaultPageSize
	case n > MaxPageSize:
		return MaxPageSize
	}
	return int32(n)
}

// unavailableError is a failure to reach PostgreSQL at all: the connection
// was refused or broken, or the server is shutting down or starting up.
// Nothing about the request is wrong; it may succeed once the database is
// back.
type unavailableError struct{ err error }

func (e *unavailableError) Error() string { return e.err.Error() }
func (e *unavailableError) Unwrap() error { return e.err }

// Unavailable marks the error for transports, which answer "try again later"
// (gRPC Unavailable, HTTP 503) without knowing PostgreSQL.
func (e *unavailableError) Unavailable() bool { return true }

// unreachable reports whether err means the database could not be reached,
// as opposed to a query it refused. A canceled or expired context is not.
func unreachable(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		switch pgErr.Code {
		case "57P01", "57P02", "57P03": // admin_shutdown, crash_shutdown, cannot_connect_now
			return true
		}
		return strings.HasPrefix(pgErr.Code, "08") // connection_exception
	}
	if _, ok := errors.AsType[*pgconn.ConnectError](err); ok {
		return true
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	return pgconn.SafeToRetry(err) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF)
}
