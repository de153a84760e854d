package httpapi

import (
	"encoding/json"
	"net/http"
	"reflect"
	"strings"
	"testing"

	"github.com/google/uuid"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/flashsale/flashsale/internal/grpcapi"
	"github.com/flashsale/flashsale/internal/order"
)

// TestCannedAnswersAreTheErrorHandlers: each canned refusal is, byte for
// byte, what the gateway's error handler writes for the same error, and an
// ALREADY_ORDERED answer names its own order.
func TestCannedAnswersAreTheErrorHandlers(t *testing.T) {
	m := &runtime.JSONPb{MarshalOptions: protojson.MarshalOptions{EmitUnpopulated: true}}
	mux := runtime.NewServeMux(runtime.WithMarshalerOption(runtime.MIMEWildcard, m))
	c := newCanned(mux, m, errorHandler)
	errs := append(grpcapi.FixedStatuses(), grpcapi.AlreadyOrdered(uuid.New()), grpcapi.AlreadyOrdered(uuid.New()))
	for _, err := range errs {
		var want, got recorder
		r, _ := http.NewRequest(http.MethodPost, "/v1/products/x/orders", http.NoBody)
		errorHandler(t.Context(), mux, m, &want, r, err)
		if !c.answer(t.Context(), m, &got, err) {
			t.Fatalf("%v: no canned answer", err)
		}
		if got.code != want.code || got.body.String() != want.body.String() || !reflect.DeepEqual(got.header, want.header) {
			t.Errorf("%v:\ncanned  %d %v %s\nhandler %d %v %s", err, got.code, got.header, got.body.String(), want.code, want.header, want.body.String())
		}
		if ae, ok := err.(*grpcapi.AlreadyOrderedError); ok && !strings.Contains(got.body.String(), ae.OrderID.String()) {
			t.Errorf("ALREADY_ORDERED answer %s lacks its order %s", got.body.String(), ae.OrderID)
		}
	}
	var rec recorder
	if c.answer(t.Context(), m, &rec, order.ErrUnavailable) {
		t.Error("an error with no canned answer was answered from the cans")
	}
}

// TestRESTRefusalsThroughTheGateway: the rush's refusals, through the whole
// REST path, are JSON statuses with their reason and, for a winner, the
// order they hold.
func TestRESTRefusalsThroughTheGateway(t *testing.T) {
	c := newRESTChain(t)
	held := uuid.New()
	c.orders.refuse = map[uuid.UUID]error{
		soldOutProduct: order.ErrSoldOut,
		heldProduct:    &order.AlreadyOrderedError{OrderID: held},
	}
	for _, tt := range []struct {
		product uuid.UUID
		code    int
		reason  string
		orderID string
	}{
		{soldOutProduct, http.StatusBadRequest, "SOLD_OUT", ""},
		{heldProduct, http.StatusConflict, "ALREADY_ORDERED", held.String()},
	} {
		resp, body := c.do(t, http.MethodPost, "/v1/products/"+tt.product.String()+"/orders", "192.0.2."+tt.reason[:1], "good")
		var st struct {
			Details []struct {
				Reason   string            `json:"reason"`
				Metadata map[string]string `json:"metadata"`
			} `json:"details"`
		}
		if err := json.Unmarshal([]byte(body), &st); err != nil {
			t.Fatalf("%s: %v in %s", tt.reason, err, body)
		}
		if resp.StatusCode != tt.code || len(st.Details) != 1 || st.Details[0].Reason != tt.reason || st.Details[0].Metadata["order_id"] != tt.orderID {
			t.Errorf("%s: %d %s, want %d with reason %s and order %q", tt.reason, resp.StatusCode, body, tt.code, tt.reason, tt.orderID)
		}
		if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
			t.Errorf("%s: Content-Type %q", tt.reason, ct)
		}
	}
}
