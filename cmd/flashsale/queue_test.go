package main

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
)

// saleOpenNow creates, as admin, a product with stock units and a sale open
// for the next hour; it returns the product id and the admin token.
func saleOpenNow(t *testing.T, s *testServer, stock int32) (productID, saleID, adminToken string) {
	t.Helper()
	ctx := t.Context()
	login, err := flashsalev1.NewAuthServiceClient(s.conn).Login(ctx, &flashsalev1.LoginRequest{Email: testAdminEmail, Password: testAdminPassword})
	if err != nil {
		t.Fatalf("admin login: %v", err)
	}
	actx := bearer(ctx, login.GetAccessToken())
	p, err := flashsalev1.NewProductServiceClient(s.conn).CreateProduct(actx, &flashsalev1.CreateProductRequest{Name: "Drop", PriceMinor: 100, Currency: "EUR", Quantity: stock})
	if err != nil {
		t.Fatalf("create product: %v", err)
	}
	now := time.Now()
	sl, err := flashsalev1.NewFlashSaleServiceClient(s.conn).CreateFlashSale(actx, &flashsalev1.CreateFlashSaleRequest{
		ProductId: p.GetProduct().GetId(), StartsAt: timestamppb.New(now.Add(-time.Second)), EndsAt: timestamppb.New(now.Add(time.Hour)),
	})
	if err != nil {
		t.Fatalf("create sale: %v", err)
	}
	return p.GetProduct().GetId(), sl.GetFlashSale().GetId(), login.GetAccessToken()
}

// registerUsers signs up n customers and returns their tokens.
func registerUsers(t *testing.T, s *testServer, n int) []string {
	t.Helper()
	authc := flashsalev1.NewAuthServiceClient(s.conn)
	tokens := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			r, err := authc.Register(t.Context(), &flashsalev1.RegisterRequest{Email: fmt.Sprintf("buyer%d-%s@example.com", i, t.Name()[:4]), Password: "buyer-password"})
			if err != nil {
				errs <- err
				return
			}
			tokens[i] = r.GetAccessToken()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("register: %v", err)
	}
	return tokens
}

// TestQueueMode: a queued order is answered 202 PENDING, then confirmed by
// the in-process worker; a refused one gets its real answer at once.
func TestQueueMode(t *testing.T) {
	s := startServer(t, "ORDER_MODE=queue")
	product, _, _ := saleOpenNow(t, s, 2)
	tokens := registerUsers(t, s, 3)
	u := s.baseURL

	code, body := httpDo(t, "POST", u+"/v1/products/"+product+"/orders", tokens[0], "{}")
	if code != 202 || str(body, "order", "status") != "ORDER_STATUS_PENDING" || str(body, "order", "id") == "" {
		t.Fatalf("queued order = %d %v, want 202 PENDING with an id", code, body)
	}
	orderID, orderTime := str(body, "order", "id"), str(body, "order", "createdAt")
	code, body = httpDo(t, "POST", u+"/v1/products/"+product+"/orders", tokens[0], "{}")
	if code != 409 || reasonOf(body) != "ALREADY_ORDERED" {
		t.Errorf("repeat = %d %v, want 409 ALREADY_ORDERED", code, body)
	}
	code, body = httpDo(t, "POST", u+"/v1/products/"+product+"/orders", tokens[1], "{}")
	if code != 202 {
		t.Errorf("last unit = %d %v, want 202", code, body)
	}
	code, body = httpDo(t, "POST", u+"/v1/products/"+product+"/orders", tokens[2], "{}")
	if code != 400 || reasonOf(body) != "SOLD_OUT" {
		t.Errorf("sold out = %d %v, want 400 SOLD_OUT (never 202)", code, body)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		code, body = httpDo(t, "GET", u+"/v1/products/"+product+"/orders/mine", tokens[0], nil)
		if code == 200 && body["secured"] == true {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("order never confirmed: %d %v", code, body)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if str(body, "order", "id") != orderID || str(body, "order", "status") != "ORDER_STATUS_CONFIRMED" || str(body, "order", "createdAt") != orderTime {
		t.Errorf("confirmed order = %v, want %s CONFIRMED created at %s", body, orderID, orderTime)
	}
}

// TestBackpressure: with the backlog at ORDERS_QUEUE_MAX_QUEUED (and no
// worker draining it), PlaceOrder fails fast: REST 503 with Retry-After and
// reason QUEUE_BUSY, gRPC Unavailable with RetryInfo.
func TestBackpressure(t *testing.T) {
	s := startServer(t, "ORDER_MODE=queue", "ORDERS_QUEUE_MAX_QUEUED=1", "ORDERS_WORKER_CONCURRENCY=0", "ORDERS_QUEUE_RETRY_AFTER_SECONDS=3")
	product, _, _ := saleOpenNow(t, s, 10)
	tokens := registerUsers(t, s, 3)
	u := s.baseURL

	code, body := httpDo(t, "POST", u+"/v1/products/"+product+"/orders", tokens[0], "{}")
	if code != 202 {
		t.Fatalf("first order = %d %v, want 202", code, body)
	}
	resp := httpRaw(t, "POST", u+"/v1/products/"+product+"/orders", tokens[1], "{}")
	if resp.code != 503 || reasonOf(resp.body) != "QUEUE_BUSY" || resp.header.Get("Retry-After") != "3" {
		t.Errorf("busy = %d %v Retry-After %q, want 503 QUEUE_BUSY Retry-After 3", resp.code, resp.body, resp.header.Get("Retry-After"))
	}

	_, err := flashsalev1.NewOrderServiceClient(s.conn).PlaceOrder(bearer(t.Context(), tokens[2]), &flashsalev1.PlaceOrderRequest{ProductId: product})
	st := status.Convert(err)
	if st.Code() != codes.Unavailable {
		t.Fatalf("gRPC busy = %v, want Unavailable", st)
	}
	var delay time.Duration
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok {
			delay = ri.GetRetryDelay().AsDuration()
		}
	}
	if delay != 3*time.Second {
		t.Errorf("RetryInfo delay = %v, want 3s", delay)
	}
}
