package main

import (
	"testing"
	"time"

	"google.golang.org/grpc/codes"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
)

// TestReconcileSaleAdminOnly: rebuilding a sale's gate state is an admin's
// call, over REST and gRPC alike; a customer who could call it during a sale
// could make the gate forget the buyers it admitted.
func TestReconcileSaleAdminOnly(t *testing.T) {
	s := startServer(t, "ORDER_MODE=sync")
	u := s.baseURL

	code, body := httpDo(t, "POST", u+"/v1/auth/login", "", map[string]string{"email": testAdminEmail, "password": testAdminPassword})
	if code != 200 {
		t.Fatalf("admin login = %d %v", code, body)
	}
	admin := str(body, "accessToken")
	code, body = httpDo(t, "POST", u+"/v1/auth/register", "", map[string]string{"email": "mallory@example.com", "password": "mallory-password"})
	if code != 200 {
		t.Fatalf("register = %d %v", code, body)
	}
	customer := str(body, "accessToken")
	code, body = httpDo(t, "POST", u+"/v1/products", admin, map[string]any{"name": "Lamp", "priceMinor": 4000, "currency": "USD", "quantity": 5})
	if code != 200 {
		t.Fatalf("create product = %d %v", code, body)
	}
	now := time.Now().UTC()
	code, body = httpDo(t, "POST", u+"/v1/flash-sales", admin, map[string]string{
		"productId": str(body, "product", "id"), "startsAt": now.Add(-time.Minute).Format(time.RFC3339), "endsAt": now.Add(time.Hour).Format(time.RFC3339),
	})
	if code != 200 {
		t.Fatalf("create sale = %d %v", code, body)
	}
	saleID := str(body, "flashSale", "id")

	reconcile := u + "/v1/flash-sales/" + saleID + ":reconcile"
	for _, tc := range []struct {
		who, token string
		want       int
	}{
		{"nobody", "", 401},
		{"customer", customer, 403},
		{"admin", admin, 200},
	} {
		code, body := httpDo(t, "POST", reconcile, tc.token, "{}")
		if code != tc.want {
			t.Errorf("REST reconcile as %s = %d %v, want %d", tc.who, code, body, tc.want)
		}
		if code == 200 && body["remaining"] != float64(5) {
			t.Errorf("REST reconcile as admin = %v, want remaining 5", body)
		}
	}

	sales := flashsalev1.NewFlashSaleServiceClient(s.conn)
	req := &flashsalev1.ReconcileSaleRequest{Id: saleID}
	_, err := sales.ReconcileSale(bearer(t.Context(), customer), req)
	wantStatus(t, err, codes.PermissionDenied, "")
	r, err := sales.ReconcileSale(bearer(t.Context(), admin), req)
	if err != nil || r.GetRemaining() != 5 {
		t.Errorf("gRPC reconcile as admin = %v, %v; want remaining 5", r, err)
	}
}
