package telemetry

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/flashsale/flashsale/internal/order"
	"github.com/flashsale/flashsale/internal/sale"
)

type fakeSales []sale.Sale

func (f fakeSales) SaleList(_ context.Context, flt sale.ListFilter) ([]sale.Sale, error) {
	var out []sale.Sale
	for _, sl := range f {
		if sl.OpenAt(flt.Now) {
			out = append(out, sl)
		}
	}
	return out, nil
}

type fakeStock map[uuid.UUID]int32

func (f fakeStock) Remaining(_ context.Context, id uuid.UUID) (int32, bool, error) {
	n, ok := f[id]
	return n, ok, nil
}

func TestOutcomeIndex(t *testing.T) {
	tests := []struct {
		o    order.Order
		err  error
		want string
	}{
		{order.Order{Status: order.StatusConfirmed}, nil, "CONFIRMED"},
		{order.Order{Status: order.StatusPending}, nil, "PENDING"},
		{order.Order{}, order.ErrSoldOut, "SOLD_OUT"},
		{order.Order{}, &order.AlreadyOrderedError{OrderID: uuid.New()}, "ALREADY_ORDERED"},
		{order.Order{}, order.ErrSaleNotActive, "SALE_NOT_ACTIVE"},
		{order.Order{}, &order.BusyError{RetryAfter: time.Second}, "QUEUE_BUSY"},
		{order.Order{}, &order.OrderError{Err: order.ErrInProgress}, "ORDER_IN_PROGRESS"},
		{order.Order{}, &order.OrderError{Err: order.ErrOutcomeUnknown}, "ORDER_OUTCOME_UNKNOWN"},
		{order.Order{}, &order.OrderError{Err: order.ErrNotReplicated}, "ORDER_NOT_REPLICATED"},
		{order.Order{}, fmt.Errorf("%w: gate: down", order.ErrUnavailable), "UNAVAILABLE"},
		{order.Order{}, errors.New("boom"), "ERROR"},
	}
	for _, tt := range tests {
		if got := Outcomes[outcomeIndex(tt.o, tt.err)]; got != tt.want {
			t.Errorf("outcome of %v, %v = %s, want %s", tt.o.Status, tt.err, got, tt.want)
		}
	}
}

// TestSalesBounded: the collector shows each sale open now, with its
// stock, from its opening (before its first order) to keepEnded after its
// end, and then forgets it.
func TestSalesBounded(t *testing.T) {
	now := time.Date(2026, 11, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	open := sale.Sale{ID: uuid.New(), ProductID: uuid.New(), StartsAt: now.Add(-time.Minute), EndsAt: now.Add(time.Minute)}
	quiet := sale.Sale{ID: uuid.New(), ProductID: uuid.New(), StartsAt: now.Add(-time.Minute), EndsAt: now.Add(time.Hour)}
	s := NewSales(fakeSales{open, quiet}, fakeStock{open.ProductID: 7, quiet.ProductID: 100}, clock)
	reg := prometheus.NewRegistry()
	reg.MustRegister(s)

	s.Decided(open, order.Order{Status: order.StatusConfirmed}, nil)
	s.Decided(open, order.Order{}, order.ErrSoldOut)
	s.Decided(open, order.Order{}, order.ErrSoldOut)
	want := func(what string, n int) {
		t.Helper()
		if got := testutil.CollectAndCount(s, "flashsale_sale_decisions_total"); got != n {
			t.Errorf("%s: %d decision series, want %d", what, got, n)
		}
	}
	want("two open sales", 2*len(Outcomes))
	expected := fmt.Sprintf(`
# HELP flashsale_sale_remaining Units an open sale may still sell: the gate's exact stock (sync and queue modes), the product's quantity (direct mode).
# TYPE flashsale_sale_remaining gauge
flashsale_sale_remaining{product=%q,sale=%q} 7
flashsale_sale_remaining{product=%q,sale=%q} 100
`, open.ProductID, open.ID, quiet.ProductID, quiet.ID)
	if err := testutil.CollectAndCompare(s, strings.NewReader(expected), "flashsale_sale_remaining"); err != nil {
		t.Error(err)
	}
	if n, _ := s.Tally(open.ID); n[0] != 1 || n[2] != 2 {
		t.Errorf("tally = %v, want 1 CONFIRMED, 2 SOLD_OUT", n)
	}

	now = open.EndsAt.Add(keepEnded - time.Second)
	want("the ended sale kept a while", 2*len(Outcomes))
	now = open.EndsAt.Add(keepEnded + time.Second)
	want("the ended sale forgotten", len(Outcomes))
	if _, ok := s.Tally(open.ID); ok {
		t.Errorf("the ended sale is still tallied")
	}
}
