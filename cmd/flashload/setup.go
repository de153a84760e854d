package main

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/types/known/timestamppb"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
	"github.com/flashsale/flashsale/internal/auth"
)

// user is one customer the load acts as.
type user struct {
	ID    string
	Token string
}

// target is the product and sale under load.
type target struct {
	ProductID string
	SaleID    string
	Stock     int // quantity when the run began
}

func bearer(ctx context.Context, token string) context.Context {
	return metadata.AppendToOutgoingContext(ctx, "authorization", "Bearer "+token)
}

// createTarget signs in as the admin and creates a product with stock and a
// sale open from now for an hour.
func createTarget(ctx context.Context, conn *grpc.ClientConn, email, password string, stock int) (target, error) {
	login, err := flashsalev1.NewAuthServiceClient(conn).Login(ctx, &flashsalev1.LoginRequest{Email: email, Password: password})
	if err != nil {
		return target{}, fmt.Errorf("admin login as %s: %w", email, err)
	}
	actx := bearer(ctx, login.GetAccessToken())
	p, err := flashsalev1.NewProductServiceClient(conn).CreateProduct(actx, &flashsalev1.CreateProductRequest{
		Name:        "flashload " + time.Now().UTC().Format(time.RFC3339Nano),
		Description: "created by flashload",
		PriceMinor:  1000,
		Currency:    "USD",
		Quantity:    int32(stock),
	})
	if err != nil {
		return target{}, fmt.Errorf("create product: %w", err)
	}
	now := time.Now()
	s, err := flashsalev1.NewFlashSaleServiceClient(conn).CreateFlashSale(actx, &flashsalev1.CreateFlashSaleRequest{
		ProductId: p.GetProduct().GetId(),
		StartsAt:  timestamppb.New(now.Add(-2 * time.Second)),
		EndsAt:    timestamppb.New(now.Add(2 * time.Hour)),
	})
	if err != nil {
		return target{}, fmt.Errorf("create flash sale: %w", err)
	}
	return target{ProductID: p.GetProduct().GetId(), SaleID: s.GetFlashSale().GetId(), Stock: stock}, nil
}

// existingTarget finds the sale open now for productID; the stock is the
// quantity left in the database.
func existingTarget(ctx context.Context, conn *grpc.ClientConn, db *pgxpool.Pool, productID string) (target, error) {
	st, err := flashsalev1.NewFlashSaleServiceClient(conn).GetSaleStatus(ctx, &flashsalev1.GetSaleStatusRequest{ProductId: productID})
	if err != nil {
		return target{}, fmt.Errorf("sale status of %s: %w", productID, err)
	}
	if st.GetState() != flashsalev1.SaleState_SALE_STATE_ACTIVE && st.GetState() != flashsalev1.SaleState_SALE_STATE_SOLD_OUT {
		return target{}, fmt.Errorf("product %s has no sale open now (state %s)", productID, st.GetState())
	}
	var q int
	if err := db.QueryRow(ctx, `SELECT quantity FROM products WHERE id = $1`, productID).Scan(&q); err != nil {
		return target{}, fmt.Errorf("read stock of %s: %w", productID, err)
	}
	return target{ProductID: productID, SaleID: st.GetFlashSaleId(), Stock: q}, nil
}

// registerUsers registers n customers through the API, parallel.
func registerUsers(ctx context.Context, conn *grpc.ClientConn, runID string, n, parallel int) ([]user, error) {
	client := flashsalev1.NewAuthServiceClient(conn)
	users := make([]user, n)
	var next atomic.Int64
	var wg sync.WaitGroup
	var once sync.Once
	var firstErr error
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range max(1, parallel) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				res, err := client.Register(ctx, &flashsalev1.RegisterRequest{
					Email:    fmt.Sprintf("flashload-%s-%d@example.com", runID, i),
					Password: "flashload-password-" + runID,
				})
				if err != nil {
					once.Do(func() { firstErr = fmt.Errorf("register user %d: %w", i, err); cancel() })
					return
				}
				users[i] = user{ID: res.GetUser().GetId(), Token: res.GetAccessToken()}
			}
		})
	}
	wg.Wait()
	return users, firstErr
}

// mintUsers inserts n customers straight into the database in one
// statement and signs their tokens with the server's secret, as
// internal/auth does, for runs too large to register through the API. The
// password hash is not a valid hash, so nobody can sign in as them.
func mintUsers(ctx context.Context, db *pgxpool.Pool, secret, runID string, n int) ([]user, error) {
	ids := make([]uuid.UUID, n)
	emails := make([]string, n)
	for i := range n {
		id, err := uuid.NewV7()
		if err != nil {
			return nil, err
		}
		ids[i] = id
		emails[i] = fmt.Sprintf("flashload-%s-%d@example.com", runID, i)
	}
	_, err := db.Exec(ctx, `
		INSERT INTO users (id, email, password_hash, role)
		SELECT id, email, '!flashload', 'customer' FROM unnest($1::uuid[], $2::text[]) AS u(id, email)`,
		ids, emails)
	if err != nil {
		return nil, fmt.Errorf("insert %d users: %w", n, err)
	}
	tokens := auth.NewTokens([]byte(secret), 3*time.Hour, nil)
	users := make([]user, n)
	for i, id := range ids {
		tok, _, err := tokens.Issue(auth.User{ID: id, Role: auth.RoleCustomer})
		if err != nil {
			return nil, err
		}
		users[i] = user{ID: id.String(), Token: tok}
	}
	return users, nil
}
