package main

import (
	"fmt"
	"slices"
	"strings"
)

// Observed is what the harness saw from the client side of one run.
type Observed struct {
	// SaleID is the sale the run ordered in.
	SaleID string
	// Stock is the product's quantity when the run began (S).
	Stock int
	// Tried holds every user that sent at least one order request.
	Tried map[string]bool
	// Acked maps each order id the server acknowledged (confirmed or
	// pending) to the user it was acknowledged for.
	Acked map[string]string
	// Rejected holds users whose every order request was answered with a
	// definite refusal, when the transport lets the harness attribute
	// refusals to users (REST); nil otherwise.
	Rejected map[string]bool
	// Ambiguous counts order requests with no definite outcome: transport
	// errors, timeouts, internal errors. Each may or may not have placed an
	// order.
	Ambiguous int
	// Throttled counts order requests the server shed before deciding
	// (rate limit, full queue); they placed no order but leave their user
	// without a decision.
	Throttled int
}

// DBState is what PostgreSQL holds after the run (and after the queue, if
// any, drained).
type DBState struct {
	// Remaining is products.quantity of the sale's product.
	Remaining int
	// Orders are the sale's orders placed during the run.
	Orders []DBOrder
}

// DBOrder is one row of orders.
type DBOrder struct {
	ID     string
	SaleID string
	UserID string
}

// Violation is one broken invariant, with the ids that show it.
type Violation struct {
	Kind   string   `json:"kind"`
	Detail string   `json:"detail"`
	IDs    []string `json:"ids,omitempty"`
}

func (v Violation) String() string {
	s := v.Kind + ": " + v.Detail
	if len(v.IDs) > 0 {
		ids := v.IDs
		more := ""
		if len(ids) > 20 {
			ids, more = ids[:20], fmt.Sprintf(" (and %d more)", len(v.IDs)-20)
		}
		s += " [" + strings.Join(ids, ", ") + "]" + more
	}
	return s
}

// Violation kinds.
const (
	KindOversell   = "oversell"
	KindStock      = "stock-mismatch"
	KindOrderCount = "order-count"
	KindDuplicate  = "duplicate-order"
	KindLost       = "lost-acknowledged-order"
	KindPhantom    = "phantom-order"
)

// check compares what the client observed with what the database holds and
// returns every invariant that does not hold:
//
//   - sold + remaining == S and remaining >= 0 (no oversell);
//   - orders == min(S, users who tried), loosened only by requests whose
//     outcome is unknown (ambiguous) or that were shed (throttled);
//   - no (sale, user) pair twice;
//   - every acknowledged order id is in the database;
//   - no order for a user whose every request was rejected, for a user who
//     never tried, and no more unacknowledged orders than ambiguous requests.
func check(o Observed, d DBState) []Violation {
	var vs []Violation
	sold := len(d.Orders)
	ids := func(orders []DBOrder) []string {
		out := make([]string, 0, len(orders))
		for _, o := range orders {
			out = append(out, o.ID)
		}
		slices.Sort(out)
		return out
	}

	if d.Remaining < 0 || sold > o.Stock {
		vs = append(vs, Violation{Kind: KindOversell,
			Detail: fmt.Sprintf("stock %d, %d orders, %d remaining", o.Stock, sold, d.Remaining)})
	}
	if sold+d.Remaining != o.Stock {
		vs = append(vs, Violation{Kind: KindStock,
			Detail: fmt.Sprintf("sold %d + remaining %d != stock %d", sold, d.Remaining, o.Stock)})
	}

	tried := len(o.Tried)
	upper := min(o.Stock, tried)
	lower := min(o.Stock, max(0, tried-o.Ambiguous-o.Throttled))
	if sold < lower || sold > upper {
		want := fmt.Sprint(upper)
		if lower != upper {
			want = fmt.Sprintf("between %d and %d", lower, upper)
		}
		vs = append(vs, Violation{Kind: KindOrderCount,
			Detail: fmt.Sprintf("%d orders in the database, want %s (stock %d, %d users tried, %d ambiguous, %d throttled requests)",
				sold, want, o.Stock, tried, o.Ambiguous, o.Throttled)})
	}

	byPair := map[[2]string][]DBOrder{}
	inDB := make(map[string]bool, len(d.Orders))
	for _, r := range d.Orders {
		k := [2]string{r.SaleID, r.UserID}
		byPair[k] = append(byPair[k], r)
		inDB[r.ID] = true
	}
	var dups []DBOrder
	for _, rs := range byPair {
		if len(rs) > 1 {
			dups = append(dups, rs...)
		}
	}
	if len(dups) > 0 {
		vs = append(vs, Violation{Kind: KindDuplicate,
			Detail: fmt.Sprintf("%d orders share a (sale, user) pair", len(dups)), IDs: ids(dups)})
	}

	var lost []string
	for id := range o.Acked {
		if !inDB[id] {
			lost = append(lost, id)
		}
	}
	if len(lost) > 0 {
		slices.Sort(lost)
		vs = append(vs, Violation{Kind: KindLost,
			Detail: fmt.Sprintf("%d acknowledged orders are not in the database", len(lost)), IDs: lost})
	}

	var rejected, stranger, unacked []DBOrder
	for _, r := range d.Orders {
		if _, ok := o.Acked[r.ID]; ok {
			continue
		}
		switch {
		case !o.Tried[r.UserID]:
			stranger = append(stranger, r)
		case o.Rejected[r.UserID]:
			rejected = append(rejected, r)
		default:
			unacked = append(unacked, r)
		}
	}
	if len(rejected) > 0 {
		vs = append(vs, Violation{Kind: KindPhantom,
			Detail: fmt.Sprintf("%d orders for users whose every request was rejected", len(rejected)), IDs: ids(rejected)})
	}
	if len(stranger) > 0 {
		vs = append(vs, Violation{Kind: KindPhantom,
			Detail: fmt.Sprintf("%d orders for users who never ordered in this run", len(stranger)), IDs: ids(stranger)})
	}
	if len(unacked) > o.Ambiguous {
		vs = append(vs, Violation{Kind: KindPhantom,
			Detail: fmt.Sprintf("%d unacknowledged orders but only %d requests without a definite answer", len(unacked), o.Ambiguous),
			IDs:    ids(unacked)})
	}
	return vs
}
