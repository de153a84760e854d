package order_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/order"
	"github.com/flashsale/flashsale/internal/sale"
)

// openSaleStore knows one open sale; Place calls nothing else on it here.
type openSaleStore struct {
	order.Store
	sl sale.Sale
}

func (s openSaleStore) SaleOpen(context.Context, uuid.UUID, time.Time) (sale.Sale, error) {
	return s.sl, nil
}

type soldOutStatus struct{ order.StatusCache }

func (soldOutStatus) SoldOut(context.Context, sale.Sale, time.Time) bool { return true }

// holderGate answers Holder; Place must not admit on a sold-out sale.
type holderGate struct {
	order.Gate
	held       uuid.UUID
	inProgress bool
	found      bool
	err        error
}

func (g holderGate) Holder(context.Context, sale.Sale, uuid.UUID) (uuid.UUID, bool, bool, error) {
	return g.held, g.inProgress, g.found, g.err
}

// TestPlaceSoldOut: once a sale is sold out, a winner's retry learns their
// order, a loser is told SOLD_OUT, and when the gate cannot say which (Redis
// unreachable) the answer is Unavailable, never SOLD_OUT to a winner.
func TestPlaceSoldOut(t *testing.T) {
	sl := sale.Sale{ID: uuid.New(), ProductID: uuid.New(), StartsAt: time.Now().Add(-time.Hour), EndsAt: time.Now().Add(time.Hour)}
	held := uuid.New()
	for _, tt := range []struct {
		name string
		gate holderGate
		want func(error) bool
	}{
		{"winner", holderGate{held: held, found: true}, func(err error) bool {
			ae, ok := errors.AsType[*order.AlreadyOrderedError](err)
			return ok && ae.OrderID == held
		}},
		{"loser", holderGate{}, func(err error) bool { return err == order.ErrSoldOut }},
		{"gate unreachable", holderGate{err: errors.New("connection refused")}, func(err error) bool {
			return errors.Is(err, order.ErrUnavailable) && !errors.Is(err, order.ErrSoldOut)
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			svc := order.NewService(openSaleStore{sl: sl}, time.Now, order.Config{Mode: order.ModeQueue, Gate: tt.gate, Status: soldOutStatus{}})
			_, err := svc.Place(t.Context(), uuid.New(), sl.ProductID)
			if !tt.want(err) {
				t.Errorf("Place = %v", err)
			}
		})
	}
}
