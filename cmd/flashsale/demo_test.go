package main

import (
	"bytes"
	"io"
	"log/slog"
	"regexp"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/postgres"
	"github.com/flashsale/flashsale/internal/postgres/pgtest"
)

// TestDemoSeedsOnce: every `make run` runs demo, and a second run must reuse
// the open demo sale instead of adding another product and sale.
func TestDemoSeedsOnce(t *testing.T) {
	cfg, err := config.LoadFrom(map[string]string{
		"DATABASE_URL": pgtest.NewDatabase(t), "AUTH_JWT_SECRET": testSecret,
	})
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	productLine := regexp.MustCompile(`(?m)^  PRODUCT=([0-9a-f-]{36})$`)
	var products []string
	for range 2 {
		var out bytes.Buffer
		if err := demo(t.Context(), cfg, log, func() time.Time { return time.Now().UTC() }, &out); err != nil {
			t.Fatalf("demo: %v", err)
		}
		m := productLine.FindStringSubmatch(out.String())
		if m == nil {
			t.Fatalf("demo printed no PRODUCT= line:\n%s", out.String())
		}
		products = append(products, m[1])
	}
	if products[0] != products[1] {
		t.Errorf("second demo printed PRODUCT=%s, want the first one's %s", products[1], products[0])
	}
	store, err := postgres.New(t.Context(), cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	all, err := store.ProductList(t.Context(), uuid.Nil, postgres.MaxPageSize)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 1 {
		t.Errorf("after two demo runs: %d products, want 1", len(all))
	}
}
