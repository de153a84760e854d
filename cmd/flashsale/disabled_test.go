package main

import (
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
)

// disabledWithin bounds the wait for a disabled or deleted user to be
// refused; internal/postgres's directory tests allow the same.
const disabledWithin = 10 * time.Second

// TestDisabledUserRejected: a token stays signed and unexpired, but once its
// user is disabled (or deleted) in PostgreSQL, even by hand, its calls are
// refused: as soon as the users table's notification reaches the server's
// user directory. That takes milliseconds, but a loaded machine under -race
// can stretch it past a second, so the test polls for up to
// disabledWithin, the bound the directory's own tests use: what it checks is
// that the refusal comes, and stays, not how fast.
func TestDisabledUserRejected(t *testing.T) {
	s := startServer(t, "ORDER_MODE=sync")
	product, _, _ := saleOpenNow(t, s, 10)
	tokens := registerUsers(t, s, 2)
	orders := flashsalev1.NewOrderServiceClient(s.conn)
	if _, err := orders.ListOrders(bearer(t.Context(), tokens[0]), &flashsalev1.ListOrdersRequest{}); err != nil {
		t.Fatalf("before: %v", err)
	}
	db, err := pgx.Connect(t.Context(), s.cfg.DatabaseURL)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close(t.Context())
	if _, err := db.Exec(t.Context(), `UPDATE users SET disabled = true WHERE email LIKE 'buyer0-%'`); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(t.Context(), `DELETE FROM users WHERE email LIKE 'buyer1-%'`); err != nil {
		t.Fatal(err)
	}
	for i, token := range tokens {
		waitFor(t, disabledWithin, fmt.Sprintf("user %d to be refused after disable/delete", i), func() (bool, string) {
			_, err := orders.ListOrders(bearer(t.Context(), token), &flashsalev1.ListOrdersRequest{})
			return status.Code(err) == codes.Unauthenticated, fmt.Sprintf("ListOrders: %v", err)
		})
		_, err := orders.PlaceOrder(bearer(t.Context(), token), &flashsalev1.PlaceOrderRequest{ProductId: product})
		if status.Code(err) != codes.Unauthenticated {
			t.Errorf("user %d after disable/delete: %v, want Unauthenticated", i, err)
		}
	}
	if code, _ := httpDo(t, "GET", s.baseURL+"/v1/orders", tokens[0], nil); code != 401 {
		t.Errorf("REST after disable = %d, want 401", code)
	}
}
