// Package pgtest gives tests a throwaway PostgreSQL database with the schema
// migrated, so each test owns its data.
package pgtest

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale/internal/postgres"
	"github.com/flashsale/flashsale/internal/testenv"
)

// DefaultAdminURL is the server tests use when TEST_DATABASE_URL is unset.
const DefaultAdminURL = "postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// NewDatabase creates a database named flashsale_test_<random> on the server
// of TEST_DATABASE_URL (a postgres:// URL whose user may create databases;
// DefaultAdminURL when unset), migrates it, and returns its URL: the admin URL
// with the database name replaced. The database is dropped in t.Cleanup.
//
// When the server cannot be reached the test is skipped, unless CI=true, where
// it fails.
func NewDatabase(t testing.TB) (databaseURL string) {
	t.Helper()
	adminURL := cmp.Or(os.Getenv("TEST_DATABASE_URL"), DefaultAdminURL)
	u, err := url.Parse(adminURL)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		t.Fatalf("TEST_DATABASE_URL must be a postgres:// URL, got %q", adminURL)
	}

	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	admin, err := connect(ctx, adminURL)
	if err != nil {
		testenv.Missing(t, "postgres at %s unreachable; start it or set TEST_DATABASE_URL: %v", u.Redacted(), err)
	}
	defer admin.Close(ctx)

	name := "flashsale_test_" + randomHex(8)
	ident := pgx.Identifier{name}.Sanitize()
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+ident); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		// t.Context is already canceled here, so a fresh one.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		admin, err := connect(ctx, adminURL)
		if err != nil {
			t.Errorf("drop test database %s: %v", name, err)
			return
		}
		defer admin.Close(ctx)
		// FORCE ends connections a test left open (PostgreSQL 13+).
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+ident+" WITH (FORCE)"); err != nil {
			t.Errorf("drop test database %s: %v", name, err)
		}
	})

	u.Path = "/" + name
	databaseURL = u.String()
	if err := postgres.Migrate(ctx, databaseURL); err != nil {
		t.Fatalf("migrate test database: %v", err)
	}
	return databaseURL
}

// connect opens an admin connection, giving up soon on an unreachable server.
func connect(ctx context.Context, adminURL string) (*pgx.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	return pgx.Connect(ctx, adminURL)
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b) // never returns an error (Go 1.24+)
	return hex.EncodeToString(b)
}
