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

// The demo product and how long its sale stays open: a day, so that a day of
// `make run` restarts reuses one sale instead of seeding another each time.
const (
	demoProductName = "Limited sneakers"
	demoStock       = 100
	demoSaleLength  = 24 * time.Hour
)

// demo seeds an admin, and a product with demoStock units and a sale open
// for demoSaleLength, unless a demo sale is open now with stock left (and
// not about to close); then it prints commands to try them.
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
	p, s, found, err := openDemoSale(ctx, store, now())
	if err != nil {
		return err
	}
	what := "Demo seeded"
	if found {
		what = "Demo already seeded (reused; nothing added)"
	} else {
		t := now()
		p, err = store.ProductCreate(ctx, product.Product{
			ID: uuid.Must(uuid.NewV7()), Name: demoProductName, Description: fmt.Sprintf("Demo drop: %d pairs.", demoStock),
			PriceMinor: 12900, Currency: "EUR", Quantity: demoStock, CreatedAt: t,
		})
		if err != nil {
			return err
		}
		s, err = store.SaleCreate(ctx, sale.Sale{
			ID: uuid.Must(uuid.NewV7()), ProductID: p.ID, StartsAt: t, EndsAt: t.Add(demoSaleLength), CreatedAt: t,
		})
		if err != nil {
			return err
		}
	}
	httpURL := "http://" + hostPort(cfg.HTTPAddr)
	grpcAddr := hostPort(cfg.GRPCAddr)
	_, err = fmt.Fprintf(out, `%[8]s: product %[1]s (%[9]d of %[10]d units left), sale %[2]s open until %[3]s.
Admin: %[4]s / %[5]s

Set these in your shell (the REST calls below use jq: sudo apt-get install jq):
  PRODUCT=%[1]s
  TOKEN=$(curl -s -X POST %[6]s/v1/auth/register -d "{\"email\":\"buyer-$(date +%%s)$RANDOM@example.com\",\"password\":\"buyer-password\"}" | jq -r .accessToken)

Try it over REST:
  curl -s %[6]s/v1/products/$PRODUCT/sale-status
  curl -s -X POST -H "Authorization: Bearer $TOKEN" %[6]s/v1/products/$PRODUCT/orders -d '{}'
  curl -s -H "Authorization: Bearer $TOKEN" %[6]s/v1/products/$PRODUCT/orders/mine

Or over gRPC (server reflection, no proto files needed). The same user's
second order answers AlreadyExists (ALREADY_ORDERED): one order per user per sale.
  grpcurl -plaintext %[7]s list
  grpcurl -plaintext -d "{\"product_id\":\"$PRODUCT\"}" %[7]s flashsale.v1.FlashSaleService/GetSaleStatus
  grpcurl -plaintext -H "authorization: Bearer $TOKEN" -d "{\"product_id\":\"$PRODUCT\"}" %[7]s flashsale.v1.OrderService/PlaceOrder

Web page: %[6]s/
`, p.ID, s.ID, s.EndsAt.Format(time.RFC3339), email, password, httpURL, grpcAddr, what, p.Quantity, demoStock)
	return err
}

// openDemoSale finds a demo product whose sale is open at t, with stock left
// and at least an hour to run, so a re-run of demo can reuse it.
func openDemoSale(ctx context.Context, store *postgres.Store, t time.Time) (product.Product, sale.Sale, bool, error) {
	f := sale.ListFilter{Now: t, Active: true, Limit: postgres.MaxPageSize}
	for {
		sales, err := store.SaleList(ctx, f)
		if err != nil {
			return product.Product{}, sale.Sale{}, false, err
		}
		for _, s := range sales {
			if s.EndsAt.Sub(t) < time.Hour {
				continue
			}
			p, err := store.ProductGet(ctx, s.ProductID)
			if err != nil {
				return product.Product{}, sale.Sale{}, false, err
			}
			if p.Name == demoProductName && p.Quantity > 0 {
				return p, s, true, nil
			}
		}
		if len(sales) < f.Limit {
			return product.Product{}, sale.Sale{}, false, nil
		}
		f.After = sales[len(sales)-1].ID
	}
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
