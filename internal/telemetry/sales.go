package telemetry

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashsale/flashsale/internal/order"
	"github.com/flashsale/flashsale/internal/product"
	"github.com/flashsale/flashsale/internal/sale"
)

// Outcomes are the values of the outcome label of
// flashsale_sale_decisions_total, in the vocabulary of the API's answers:
// the order's status, or the reason it was refused.
var Outcomes = [...]string{
	"CONFIRMED", "PENDING",
	"SOLD_OUT", "ALREADY_ORDERED", "SALE_NOT_ACTIVE",
	"QUEUE_BUSY", "ORDER_IN_PROGRESS", "ORDER_OUTCOME_UNKNOWN", "ORDER_NOT_REPLICATED", "UNAVAILABLE", "ERROR",
}

// outcomeIndex is Outcomes' index of an attempt's outcome.
func outcomeIndex(o order.Order, err error) int {
	switch {
	case err == nil && o.Status == order.StatusPending:
		return 1
	case err == nil:
		return 0
	case errors.Is(err, order.ErrSoldOut):
		return 2
	case errors.Is(err, order.ErrAlreadyOrdered):
		return 3
	case errors.Is(err, order.ErrSaleNotActive):
		return 4
	case errors.Is(err, order.ErrInProgress):
		return 6
	case errors.Is(err, order.ErrOutcomeUnknown):
		return 7
	case errors.Is(err, order.ErrNotReplicated):
		return 8
	case errors.Is(err, order.ErrUnavailable):
		return 9
	}
	if _, ok := errors.AsType[*order.BusyError](err); ok {
		return 5
	}
	return 10
}

// SaleLister lists sales (the catalog).
type SaleLister interface {
	SaleList(ctx context.Context, f sale.ListFilter) ([]sale.Sale, error)
}

// Stock reads a product's units left: the gate's exact count (redis.Gate).
type Stock interface {
	Remaining(ctx context.Context, productID uuid.UUID) (remaining int32, loaded bool, err error)
}

// ProductStock is Stock read from the product's quantity in PostgreSQL,
// for direct mode, which has no gate.
type ProductStock struct {
	Products interface {
		ProductGet(ctx context.Context, id uuid.UUID) (product.Product, error)
	}
}

// Remaining implements Stock.
func (p ProductStock) Remaining(ctx context.Context, productID uuid.UUID) (int32, bool, error) {
	pr, err := p.Products.ProductGet(ctx, productID)
	if err != nil {
		return 0, false, err
	}
	return pr.Quantity, true, nil
}

// Limits on the sales tallied, so the sale label stays bounded: a sale is
// kept keepEnded after it ends (for the last scrapes to see its totals),
// and at most maxSales at once.
const (
	keepEnded = 5 * time.Minute
	maxSales  = 1000
)

// Sales counts the decisions on each open sale's order attempts
// (order.DecisionRecorder) and is the Prometheus collector of the sales
// open now: decisions by outcome and units left, labelled by sale and
// product. Sales appear when they open and go keepEnded after they end.
type Sales struct {
	list  SaleLister
	stock Stock
	now   func() time.Time

	tallies sync.Map // sale id -> *tally
	n       atomic.Int64

	decisions, remaining *prometheus.Desc
}

type tally struct {
	sale sale.Sale
	n    [len(Outcomes)]atomic.Uint64
}

var _ order.DecisionRecorder = (*Sales)(nil)

// NewSales returns the per-sale metrics over the catalog's open sales and
// the stock they sell from; now is the clock sales open and end by.
func NewSales(list SaleLister, stock Stock, now func() time.Time) *Sales {
	labels := []string{"sale", "product"}
	return &Sales{
		list: list, stock: stock, now: now,
		decisions: prometheus.NewDesc("flashsale_sale_decisions_total",
			"Order attempts on an open sale by outcome: CONFIRMED or PENDING (admitted), or the reason refused (SOLD_OUT, ALREADY_ORDERED, QUEUE_BUSY, ...). Kept from the sale's opening to 5 minutes after its end.",
			append(labels, "outcome"), nil),
		remaining: prometheus.NewDesc("flashsale_sale_remaining",
			"Units an open sale may still sell: the gate's exact stock (sync and queue modes), the product's quantity (direct mode).",
			labels, nil),
	}
}

// Decided implements order.DecisionRecorder: one atomic add.
func (s *Sales) Decided(sl sale.Sale, o order.Order, err error) {
	if t := s.tally(sl); t != nil {
		t.n[outcomeIndex(o, err)].Add(1)
	}
}

// Tally is a sale's decisions so far by outcome (Outcomes' order), and
// whether the sale is tallied at all.
func (s *Sales) Tally(saleID uuid.UUID) ([]uint64, bool) {
	v, ok := s.tallies.Load(saleID)
	if !ok {
		return nil, false
	}
	t := v.(*tally)
	out := make([]uint64, len(Outcomes))
	for i := range t.n {
		out[i] = t.n[i].Load()
	}
	return out, true
}

func (s *Sales) tally(sl sale.Sale) *tally {
	if v, ok := s.tallies.Load(sl.ID); ok {
		return v.(*tally)
	}
	if s.n.Load() >= maxSales {
		return nil
	}
	v, loaded := s.tallies.LoadOrStore(sl.ID, &tally{sale: sl})
	if !loaded {
		s.n.Add(1)
	}
	return v.(*tally)
}

// Describe implements prometheus.Collector.
func (s *Sales) Describe(ch chan<- *prometheus.Desc) {
	ch <- s.decisions
	ch <- s.remaining
}

// Collect implements prometheus.Collector: it lists the sales open now,
// reads their stock, and reports every tallied sale.
func (s *Sales) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	now := s.now()
	open, err := s.list.SaleList(ctx, sale.ListFilter{Now: now, Active: true, Limit: maxSales})
	if err == nil {
		for _, sl := range open {
			s.tally(sl) // a sale shows from its opening, before its first order
			left, loaded, err := s.stock.Remaining(ctx, sl.ProductID)
			if err == nil && loaded {
				ch <- prometheus.MustNewConstMetric(s.remaining, prometheus.GaugeValue, float64(left), sl.ID.String(), sl.ProductID.String())
			}
		}
	}
	s.tallies.Range(func(k, v any) bool {
		t := v.(*tally)
		if now.Sub(t.sale.EndsAt) > keepEnded {
			s.tallies.Delete(k)
			s.n.Add(-1)
			return true
		}
		id, p := t.sale.ID.String(), t.sale.ProductID.String()
		for i, name := range Outcomes {
			ch <- prometheus.MustNewConstMetric(s.decisions, prometheus.CounterValue, float64(t.n[i].Load()), id, p, name)
		}
		return true
	})
}
