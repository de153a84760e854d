package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/auth"
	"github.com/flashsale/flashsale/internal/config"
	"github.com/flashsale/flashsale/internal/postgres"
	"github.com/flashsale/flashsale/internal/product"
	"github.com/flashsale/flashsale/internal/sale"
)

// Demo credentials, used when ADMIN_EMAIL is not set.
const (
	demoAdminEmail    = "admin@example.com"
	demoAdminPassword = "admin-password-123"
)

// demo seeds an admin, a product with 100 units and a sale open for the next
// hour, and prints commands to try them.
func demo(ctx context.Context, cfg config.Config, log *slog.Logger, now func() time.Time, out io.Writer) error {
	store, err := postgres.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer store.Close()
	email, password := cfg.AdminEmail, cfg.AdminPassword
	if email == "" {
		email, password = demoAdminEmail, demoAdminPassword
	}
	users := auth.NewService(store, nil, now, log)
	if _, err := users.EnsureAdmin(ctx, email, password); err != nil {
		return fmt.Errorf("demo admin: %w", err)
	}
	t := now()
	p, err := store.ProductCreate(ctx, product.Product{
		ID: uuid.Must(uuid.NewV7()), Name: "Limited sneakers", Description: "Demo drop: 100 pairs.",
		PriceMinor: 12900, Currency: "EUR", Quantity: 100, CreatedAt: t,
	})
	if err != nil {
		return err
	}
	s, err := store.SaleCreate(ctx, sale.Sale{
		ID: uuid.Must(uuid.NewV7()), ProductID: p.ID, StartsAt: t, EndsAt: t.Add(time.Hour), CreatedAt: t,
	})
	if err != nil {
		return err
	}
	httpURL := "http://" + hostPort(cfg.HTTPAddr)
	grpcAddr := hostPort(cfg.GRPCAddr)
	_, err = fmt.Fprintf(out, `Demo seeded: product %s (100 units), sale %s open until %s.
Admin: %s / %s

Try it over REST:
  TOKEN=$(curl -s -X POST %[6]s/v1/auth/register -d '{"email":"buyer-%[8]d@example.com","password":"buyer-password"}' | sed -E 's/.*"accessToken":"([^"]+)".*/\1/')
  curl -s %[6]s/v1/products/%[1]s/sale-status
  curl -s -X POST -H "Authorization: Bearer $TOKEN" %[6]s/v1/products/%[1]s/orders -d '{}'
  curl -s -H "Authorization: Bearer $TOKEN" %[6]s/v1/products/%[1]s/orders/mine

Or over gRPC (server reflection, no proto files needed):
  grpcurl -plaintext %[7]s list
  grpcurl -plaintext -d '{"product_id":"%[1]s"}' %[7]s flashsale.v1.FlashSaleService/GetSaleStatus
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" -d '{"product_id":"%[1]s"}' %[7]s flashsale.v1.OrderService/PlaceOrder

Web page: %[6]s/
`, p.ID, s.ID, s.EndsAt.Format(time.RFC3339), email, password, httpURL, grpcAddr, t.Unix())
	return err
}

// hostPort turns a listen address (":8080") into one to connect to.
func hostPort(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return addr
	}
	if host == "" || host == "0.0.0.0" || host == "::" {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}

// createAdmin creates or updates the admin of ADMIN_EMAIL / ADMIN_PASSWORD
// without starting the server.
func createAdmin(ctx context.Context, cfg config.Config, log *slog.Logger, now func() time.Time, out io.Writer) error {
	if cfg.AdminEmail == "" {
		return fmt.Errorf("create-admin: set ADMIN_EMAIL and ADMIN_PASSWORD")
	}
	store, err := postgres.New(ctx, cfg.DatabaseURL)
	if err != nil {
		return err
	}
	defer store.Close()
	u, err := auth.NewService(store, nil, now, log).EnsureAdmin(ctx, cfg.AdminEmail, cfg.AdminPassword)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "admin %s (%s) ready\n", u.Email, u.ID)
	return err
}
