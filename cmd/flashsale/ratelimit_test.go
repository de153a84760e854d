package main

import (
	"testing"

	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
)

// TestRateLimits: past a user's order bucket (shared through Redis) REST
// answers 429 with Retry-After and reason RATE_LIMITED, gRPC
// ResourceExhausted with RetryInfo; past the per-IP bucket every call does.
func TestRateLimits(t *testing.T) {
	s := startServer(t, "ORDER_MODE=sync", "RL_DISABLED=false",
		"RL_USER_ORDER_CAPACITY=1", "RL_USER_ORDER_REFILL=0.1",
		"RL_IP_CAPACITY=30", "RL_IP_REFILL=0.1")
	product, _, _ := saleOpenNow(t, s, 10)
	tokens := registerUsers(t, s, 1)
	u := s.baseURL

	if code, body := httpDo(t, "POST", u+"/v1/products/"+product+"/orders", tokens[0], "{}"); code != 200 {
		t.Fatalf("first order = %d %v", code, body)
	}
	r := httpRaw(t, "POST", u+"/v1/products/"+product+"/orders", tokens[0], "{}")
	if r.code != 429 || reasonOf(r.body) != "RATE_LIMITED" || r.header.Get("Retry-After") == "" {
		t.Errorf("second attempt = %d %v Retry-After %q, want 429 RATE_LIMITED with Retry-After", r.code, r.body, r.header.Get("Retry-After"))
	}
	_, err := flashsalev1.NewOrderServiceClient(s.conn).PlaceOrder(bearer(t.Context(), tokens[0]), &flashsalev1.PlaceOrderRequest{ProductId: product})
	st := status.Convert(err)
	var retry bool
	for _, d := range st.Details() {
		if ri, ok := d.(*errdetails.RetryInfo); ok && ri.GetRetryDelay().AsDuration() > 0 {
			retry = true
		}
	}
	if st.Code() != codes.ResourceExhausted || !retry {
		t.Errorf("gRPC attempt = %v (RetryInfo %v), want ResourceExhausted with RetryInfo", st, retry)
	}

	// The per-IP bucket (30, barely refilling) runs dry for any call.
	var limited bool
	for range 40 {
		if r := httpRaw(t, "GET", u+"/v1/products/"+product+"/sale-status", "", nil); r.code == 429 {
			limited = reasonOf(r.body) == "RATE_LIMITED" && r.header.Get("Retry-After") != ""
			break
		}
	}
	if !limited {
		t.Error("40 status reads from one IP never got 429 RATE_LIMITED with Retry-After")
	}
}
