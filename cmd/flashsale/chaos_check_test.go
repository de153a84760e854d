package main

import (
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc/codes"
)

// The checker of TestChaos: pure functions over what one phase recorded (every
// response) and what PostgreSQL holds afterwards, in the spirit of Jepsen's
// bank and set workloads. Nothing here talks to a process, so each check can
// be proven against a hand-made history (TestChaosChecker).

// chaosCall is one recorded call: an answer, or a failure to get one.
type chaosCall struct {
	RPC        string // PlaceOrder, CheckOrder or ReconcileSale
	Transport  string // rest or grpc
	Serve      int    // which serve process it went to
	User       string // user id (PlaceOrder, CheckOrder)
	Product    string
	Pass       int // PlaceOrder: the user's first or second go at the product
	Start, End time.Time
	// Sale is the sale the answer names: the order's (PlaceOrder), the
	// product's current sale (CheckOrder), the one reconciled (ReconcileSale).
	Sale string
	// HTTP is the REST status, 0 over gRPC or when no answer came.
	HTTP int
	// Code is the gRPC code; over REST, the code in the error body (OK for a
	// 2xx). A transport failure is Unavailable with NoAnswer set.
	Code     codes.Code
	NoAnswer bool
	Reason   string // ErrorInfo reason
	Message  string // error message (status message or transport error)
	// OrderID is the order in the answer: the body of a 200 or 202, the
	// ErrorInfo metadata order_id of ALREADY_ORDERED, CheckOrder's order.
	OrderID string
	// Status is the order's status in the answer (PENDING, CONFIRMED,
	// REJECTED), empty without an order.
	Status string
}

// acked reports whether the call acknowledged an order to its caller: 200
// CONFIRMED, 202 PENDING, or ALREADY_ORDERED naming the order.
func (c chaosCall) acked() bool {
	if c.RPC != "PlaceOrder" {
		return false
	}
	if c.Code == codes.OK {
		return c.OrderID != "" && (c.Status == "CONFIRMED" || c.Status == "PENDING")
	}
	return c.Reason == "ALREADY_ORDERED" && c.OrderID != ""
}

// outcome names the answer for counts: the order's status, else the
// ErrorInfo reason, else the code; a transport failure is "no answer".
func (c chaosCall) outcome() string {
	switch {
	case c.NoAnswer:
		return "no answer"
	case c.Code == codes.OK && c.Status != "":
		return c.Status
	case c.Code == codes.OK:
		return "OK"
	case c.Reason == "ALREADY_ORDERED" && c.OrderID != "":
		return "ALREADY_ORDERED with order id"
	case c.Reason != "":
		return c.Reason
	}
	return c.Code.String()
}

// answer describes the call's answer in a violation: status, reason, order.
func (c chaosCall) answer() string {
	var b strings.Builder
	if c.HTTP != 0 {
		fmt.Fprintf(&b, "%d ", c.HTTP)
	}
	switch {
	case c.RPC == "CheckOrder" && c.Code == codes.OK && c.OrderID == "":
		b.WriteString("order: null")
	case c.RPC == "CheckOrder" && c.Code == codes.OK:
		fmt.Fprintf(&b, "%s order %s", c.Status, c.OrderID)
	default:
		b.WriteString(c.outcome())
	}
	if c.OrderID != "" && c.Code != codes.OK {
		fmt.Fprintf(&b, " (order %s)", c.OrderID)
	}
	if c.Code != codes.OK && c.Message != "" && c.Reason == "" {
		fmt.Fprintf(&b, " %q", c.Message)
	}
	return b.String()
}

// chaosSale is a sale the phase created.
type chaosSale struct {
	ID, Product  string
	Starts, Ends time.Time // [Starts, Ends)
	Role         string    // what the phase uses it for, for the report
}

// chaosHistory is everything one phase recorded.
type chaosHistory struct {
	Seed  uint64
	Mode  string
	Start time.Time // times in violations are relative to it
	Calls []chaosCall
	Sales map[string]chaosSale // by id
	Stock map[string]int       // initial stock by product id
}

// chaosOrder is a row of the orders table.
type chaosOrder struct {
	ID, Sale, Product, User, Status string
	Created                         time.Time
}

// chaosDB is what PostgreSQL holds once the phase has settled.
type chaosDB struct {
	Orders   []chaosOrder
	Quantity map[string]int // products.quantity by id
}

// chaosCheck is one invariant and the ways the phase broke it.
type chaosCheck struct {
	Name       string
	Violations []chaosViolation
}

// chaosViolation is one way a check failed.
type chaosViolation struct {
	Sale string // the sale concerned, "" when unknown or not one sale
	Msg  string
}

// The checks, in the order checkChaos returns them.
const (
	checkAckedPersisted = "1 every acknowledged order is in PostgreSQL with its id, for its user"
	checkPendingEnds    = "2 no 202 PENDING ended REJECTED"
	checkStock          = "3 sold + remaining = stock for each product, nothing oversold"
	checkOnePerUser     = "4 no buyer twice in a sale (orders rows; acknowledged order ids)"
	checkCheckOrder     = "5 CheckOrder agrees with PostgreSQL"
	checkNo5xx          = "6 no 5xx other than 503 (gRPC: no Internal, Unknown, DataLoss)"
	checkWinnerRetry    = "7 a winner's retry is not told SOLD_OUT or another order"
	checkOrderIDGiven   = "8 ALREADY_ORDERED to a winner carries the order id"
)

// checkChaos runs every check over the history and the database.
func checkChaos(h chaosHistory, db chaosDB) []chaosCheck {
	x := newChaosIndex(h, db)
	retry, noID := x.winnerRetry()
	return []chaosCheck{
		{checkAckedPersisted, x.ackedPersisted()},
		{checkPendingEnds, x.pendingEnds()},
		{checkStock, x.stock()},
		{checkOnePerUser, x.onePerUser()},
		{checkCheckOrder, x.checkOrderAgrees()},
		{checkNo5xx, x.no5xx()},
		{checkWinnerRetry, retry},
		{checkOrderIDGiven, noID},
	}
}

// chaosIndex is the history and the rows, indexed for the checks.
type chaosIndex struct {
	h          chaosHistory
	db         chaosDB
	byID       map[string]chaosOrder
	bySaleUser map[string][]chaosOrder // sale/user
	// lastCheck is the latest successful CheckOrder answer per product/user.
	lastCheck map[string]chaosCall
}

func newChaosIndex(h chaosHistory, db chaosDB) *chaosIndex {
	x := &chaosIndex{h: h, db: db, byID: map[string]chaosOrder{}, bySaleUser: map[string][]chaosOrder{}, lastCheck: map[string]chaosCall{}}
	for _, o := range db.Orders {
		x.byID[o.ID] = o
		x.bySaleUser[o.Sale+"/"+o.User] = append(x.bySaleUser[o.Sale+"/"+o.User], o)
	}
	for _, c := range h.Calls {
		if c.RPC != "CheckOrder" || c.Code != codes.OK || c.NoAnswer {
			continue
		}
		k := c.Product + "/" + c.User
		if prev, ok := x.lastCheck[k]; !ok || c.End.After(prev.End) {
			x.lastCheck[k] = c
		}
	}
	return x
}

// at is t as an offset into the phase, for messages.
func (x *chaosIndex) at(t time.Time) string {
	return fmt.Sprintf("+%.3fs", t.Sub(x.h.Start).Seconds())
}

// describe names a call in a violation: who asked what, when, how.
func (x *chaosIndex) describe(c chaosCall) string {
	pass := ""
	if c.Pass > 0 {
		pass = fmt.Sprintf(", pass %d", c.Pass)
	}
	who := "user " + c.User + " product " + c.Product
	if c.RPC == "ReconcileSale" {
		who = "sale " + c.Sale
	}
	return fmt.Sprintf("%s %s at %s (serve %d%s) %s: %s",
		c.Transport, c.RPC, x.at(c.Start), c.Serve, pass, who, c.answer())
}

// row is the user's order in the sale, if PostgreSQL holds one.
func (x *chaosIndex) row(sale, user string) (chaosOrder, bool) {
	rows := x.bySaleUser[sale+"/"+user]
	if len(rows) == 0 {
		return chaosOrder{}, false
	}
	return rows[0], true
}

// saleOf is the sale a call concerns: the one in the answer, else its
// order's row's, else the product's sale open for the whole call, else "".
func (x *chaosIndex) saleOf(c chaosCall) string {
	if c.Sale != "" {
		return c.Sale
	}
	if o, ok := x.byID[c.OrderID]; ok {
		return o.Sale
	}
	if c.OrderID != "" {
		return "" // an order id PostgreSQL does not know: its sale is unknown
	}
	return x.saleDuring(c.Product, c.Start, c.End)
}

// saleDuring is the product's sale open for the whole call, "" when none
// was or the call straddled a boundary (then the answer's sale is unknown).
func (x *chaosIndex) saleDuring(product string, from, to time.Time) string {
	for _, s := range x.h.Sales {
		if s.Product == product && !from.Before(s.Starts) && to.Before(s.Ends) {
			return s.ID
		}
	}
	return ""
}

// finalState is what became of an acknowledged order: CONFIRMED when its row
// exists, else what the last CheckOrder said about the user's order in that
// sale, if it asked about that sale.
func (x *chaosIndex) finalState(c chaosCall) string {
	if _, ok := x.byID[c.OrderID]; ok {
		return "in PostgreSQL"
	}
	chk, ok := x.lastCheck[c.Product+"/"+c.User]
	switch {
	case !ok:
		return "not in PostgreSQL (no CheckOrder answer)"
	case c.Sale == "" || chk.Sale != c.Sale:
		return "not in PostgreSQL (CheckOrder now reports another sale)"
	case chk.OrderID == "":
		return "not in PostgreSQL; CheckOrder says order: null"
	case chk.OrderID != c.OrderID:
		return fmt.Sprintf("not in PostgreSQL; CheckOrder says %s order %s", chk.Status, chk.OrderID)
	}
	return "not in PostgreSQL; CheckOrder says " + chk.Status
}

// ackedPersisted: check 1. One violation per acknowledged order id.
func (x *chaosIndex) ackedPersisted() []chaosViolation {
	var out []chaosViolation
	seen := map[string]bool{}
	for _, c := range x.h.Calls {
		if !c.acked() || seen[c.OrderID] {
			continue
		}
		row, ok := x.byID[c.OrderID]
		switch {
		case !ok:
			seen[c.OrderID] = true
			out = append(out, chaosViolation{c.Sale, fmt.Sprintf("order %s: %s; %s", c.OrderID, x.describe(c), x.finalState(c))})
		case row.User != c.User || row.Product != c.Product || (c.Sale != "" && row.Sale != c.Sale):
			seen[c.OrderID] = true
			out = append(out, chaosViolation{row.Sale, fmt.Sprintf("order %s: %s; PostgreSQL holds it for user %s, product %s, sale %s",
				c.OrderID, x.describe(c), row.User, row.Product, row.Sale)})
		}
	}
	return out
}

// pendingEnds: check 2. A 202 must end CONFIRMED: its row exists, and
// CheckOrder, when it reports that sale, says CONFIRMED with that id.
func (x *chaosIndex) pendingEnds() []chaosViolation {
	var out []chaosViolation
	seen := map[string]bool{}
	for _, c := range x.h.Calls {
		if c.RPC != "PlaceOrder" || c.Code != codes.OK || c.Status != "PENDING" || seen[c.OrderID] {
			continue
		}
		seen[c.OrderID] = true
		_, stored := x.byID[c.OrderID]
		chk, checked := x.lastCheck[c.Product+"/"+c.User]
		checked = checked && chk.Sale == c.Sale
		switch {
		case !stored:
			out = append(out, chaosViolation{c.Sale, fmt.Sprintf("202 order %s (%s): %s", c.OrderID, x.describe(c), x.finalState(c))})
		case checked && (chk.OrderID != c.OrderID || chk.Status != "CONFIRMED"):
			out = append(out, chaosViolation{c.Sale, fmt.Sprintf("202 order %s (%s): stored, but CheckOrder says %s order %q",
				c.OrderID, x.describe(c), chk.Status, chk.OrderID)})
		}
	}
	return out
}

// stock: check 3.
func (x *chaosIndex) stock() []chaosViolation {
	sold := map[string]int{}
	for _, o := range x.db.Orders {
		sold[o.Product]++
	}
	var out []chaosViolation
	for _, p := range slices.Sorted(maps.Keys(x.h.Stock)) {
		initial := x.h.Stock[p]
		left, ok := x.db.Quantity[p]
		switch {
		case !ok:
			out = append(out, chaosViolation{"", fmt.Sprintf("product %s: not in PostgreSQL", p)})
		case left < 0 || sold[p] > initial:
			out = append(out, chaosViolation{"", fmt.Sprintf("product %s oversold: %d orders, %d left, of %d", p, sold[p], left, initial)})
		case sold[p]+left != initial:
			out = append(out, chaosViolation{"", fmt.Sprintf("product %s: sold %d + remaining %d = %d, want the initial stock %d",
				p, sold[p], left, sold[p]+left, initial)})
		}
	}
	return out
}

// onePerUser: check 4. No (sale, user) twice among the rows, and no user
// acknowledged two different order ids in one sale.
func (x *chaosIndex) onePerUser() []chaosViolation {
	var out []chaosViolation
	for _, k := range slices.Sorted(maps.Keys(x.bySaleUser)) {
		if rows := x.bySaleUser[k]; len(rows) > 1 {
			ids := make([]string, len(rows))
			for i, r := range rows {
				ids[i] = r.ID
			}
			out = append(out, chaosViolation{rows[0].Sale, fmt.Sprintf("sale/user %s has %d orders in PostgreSQL: %v", k, len(rows), ids)})
		}
	}
	type key struct{ sale, user string }
	acks := map[key][]chaosCall{} // the first ack of each id
	for _, c := range x.h.Calls {
		s := x.saleOf(c)
		if !c.acked() || s == "" {
			continue
		}
		k := key{s, c.User}
		if !slices.ContainsFunc(acks[k], func(a chaosCall) bool { return a.OrderID == c.OrderID }) {
			acks[k] = append(acks[k], c)
		}
	}
	keys := slices.SortedFunc(maps.Keys(acks), func(a, b key) int { return strings.Compare(a.sale+a.user, b.sale+b.user) })
	for _, k := range keys {
		if as := acks[k]; len(as) > 1 {
			descs := make([]string, len(as))
			for i, a := range as {
				descs[i] = fmt.Sprintf("%s [%s; %s]", a.OrderID, x.describe(a), x.finalState(a))
			}
			out = append(out, chaosViolation{k.sale, fmt.Sprintf("user %s acknowledged %d order ids in sale %s: %s",
				k.user, len(as), k.sale, strings.Join(descs, ", "))})
		}
	}
	return out
}

// checkOrderAgrees: check 5, over the last CheckOrder answer per user and
// product (the sweep after the run). It reports the product's current sale.
func (x *chaosIndex) checkOrderAgrees() []chaosViolation {
	// The acknowledged order ids per sale/user.
	acked := map[string][]string{}
	for _, c := range x.h.Calls {
		if s := x.saleOf(c); c.acked() && s != "" && !slices.Contains(acked[s+"/"+c.User], c.OrderID) {
			acked[s+"/"+c.User] = append(acked[s+"/"+c.User], c.OrderID)
		}
	}
	var out []chaosViolation
	for _, k := range slices.Sorted(maps.Keys(x.lastCheck)) {
		c := x.lastCheck[k]
		if s, ok := x.h.Sales[c.Sale]; !ok || s.Product != c.Product {
			out = append(out, chaosViolation{"", fmt.Sprintf("%s: names sale %q, not a sale of the product", x.describe(c), c.Sale)})
			continue
		}
		row, stored := x.row(c.Sale, c.User)
		ids := acked[c.Sale+"/"+c.User]
		var msg string
		switch {
		case stored && (c.OrderID != row.ID || c.Status != "CONFIRMED"):
			msg = fmt.Sprintf("%s; PostgreSQL holds CONFIRMED order %s in sale %s", x.describe(c), row.ID, c.Sale)
		case stored:
		case c.Status == "CONFIRMED":
			msg = fmt.Sprintf("%s in sale %s; PostgreSQL holds no order of the user there", x.describe(c), c.Sale)
		case c.Status == "PENDING":
			msg = fmt.Sprintf("%s in sale %s: still PENDING after the run settled, not in PostgreSQL", x.describe(c), c.Sale)
		case c.OrderID == "" && len(ids) > 0:
			msg = fmt.Sprintf("%s in sale %s, for acknowledged order(s) %v", x.describe(c), c.Sale, ids)
		}
		if msg != "" {
			out = append(out, chaosViolation{c.Sale, msg})
		}
	}
	return out
}

// no5xx: check 6, over every answer (PlaceOrder, CheckOrder, ReconcileSale).
func (x *chaosIndex) no5xx() []chaosViolation {
	var out []chaosViolation
	for _, c := range x.h.Calls {
		bad := c.HTTP >= 500 && c.HTTP != 503
		if c.Transport == "grpc" && !c.NoAnswer {
			bad = c.Code == codes.Internal || c.Code == codes.Unknown || c.Code == codes.DataLoss
		}
		if bad {
			out = append(out, chaosViolation{x.saleOf(c), x.describe(c)})
		}
	}
	return out
}

// winnerRetry: checks 7 and 8. A user who holds an order in a sale (its row
// was created before they asked again) must be told ALREADY_ORDERED with
// that order's id: never SOLD_OUT, never another order's id (7), never
// without the id (8). Only calls made wholly inside one sale's window are
// judged, so the sale is known.
func (x *chaosIndex) winnerRetry() (retry, noID []chaosViolation) {
	// The server stamps an order with its clock truncated to the millisecond;
	// 2 ms of slack keeps a race between the two calls from counting.
	const slack = 2 * time.Millisecond
	for _, c := range x.h.Calls {
		if c.RPC != "PlaceOrder" || (c.Reason != "SOLD_OUT" && c.Reason != "ALREADY_ORDERED") {
			continue
		}
		s := x.saleDuring(c.Product, c.Start, c.End)
		if s == "" {
			continue
		}
		row, ok := x.row(s, c.User)
		if !ok || !row.Created.Add(slack).Before(c.Start) {
			continue
		}
		switch {
		case c.Reason == "SOLD_OUT":
			retry = append(retry, chaosViolation{s, fmt.Sprintf("%s, but holds order %s in sale %s since %s", x.describe(c), row.ID, s, x.at(row.Created))})
		case c.OrderID == "":
			noID = append(noID, chaosViolation{s, fmt.Sprintf("%s without its order id (holds order %s in sale %s)", x.describe(c), row.ID, s)})
		case c.OrderID != row.ID:
			retry = append(retry, chaosViolation{s, fmt.Sprintf("%s, but holds order %s in sale %s", x.describe(c), row.ID, s)})
		}
	}
	return retry, noID
}

// chaosOutcomes counts PlaceOrder answers by outcome.
func chaosOutcomes(calls []chaosCall) map[string]int {
	m := map[string]int{}
	for _, c := range calls {
		if c.RPC == "PlaceOrder" {
			m[c.outcome()]++
		}
	}
	return m
}

// formatCounts prints a count map in a stable order, largest first.
func formatCounts(m map[string]int) string {
	keys := slices.Collect(maps.Keys(m))
	sort.Slice(keys, func(i, j int) bool {
		if m[keys[i]] != m[keys[j]] {
			return m[keys[i]] > m[keys[j]]
		}
		return keys[i] < keys[j]
	})
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%d", k, m[k])
	}
	return strings.Join(parts, " ")
}

// TestChaosChecker proves each check of checkChaos can fail: a clean
// hand-made history passes all of them, and a bad one breaks each.
func TestChaosChecker(t *testing.T) {
	t0 := time.Date(2030, 1, 1, 12, 0, 0, 0, time.UTC)
	at := func(s float64) time.Time { return t0.Add(time.Duration(s * float64(time.Second))) }
	const product, sale = "p1", "s1"
	base := chaosHistory{
		Seed: 7, Mode: "queue", Start: t0,
		Sales: map[string]chaosSale{sale: {ID: sale, Product: product, Starts: t0, Ends: t0.Add(time.Hour)}},
		Stock: map[string]int{product: 3},
	}
	place := func(user string, s float64, c chaosCall) chaosCall {
		c.RPC, c.User, c.Product, c.Start, c.End = "PlaceOrder", user, product, at(s), at(s+0.01)
		if c.Transport == "" {
			c.Transport = "grpc"
		}
		return c
	}
	check := func(user string, s float64, orderID, status string) chaosCall {
		return chaosCall{RPC: "CheckOrder", Transport: "rest", HTTP: 200, User: user, Product: product,
			Start: at(s), End: at(s + 0.01), Sale: sale, OrderID: orderID, Status: status}
	}
	row := func(id, user string, s float64) chaosOrder {
		return chaosOrder{ID: id, Sale: sale, Product: product, User: user, Status: "confirmed", Created: at(s)}
	}

	t.Run("clean", func(t *testing.T) {
		h := base
		h.Calls = []chaosCall{
			place("u1", 1, chaosCall{Sale: sale, OrderID: "o1", Status: "CONFIRMED"}),
			place("u2", 2, chaosCall{Transport: "rest", HTTP: 202, Sale: sale, OrderID: "o2", Status: "PENDING"}),
			place("u1", 3, chaosCall{Code: codes.AlreadyExists, Reason: "ALREADY_ORDERED", OrderID: "o1"}),
			place("u3", 4, chaosCall{Code: codes.FailedPrecondition, Reason: "SOLD_OUT"}),
			place("u3", 5, chaosCall{Transport: "rest", HTTP: 503, Code: codes.Unavailable}),
			place("u3", 6, chaosCall{Code: codes.Unavailable, NoAnswer: true}),
			check("u1", 9, "o1", "CONFIRMED"),
			check("u2", 9, "o2", "CONFIRMED"),
			check("u3", 9, "", ""),
		}
		db := chaosDB{Orders: []chaosOrder{row("o1", "u1", 1), row("o2", "u2", 2)}, Quantity: map[string]int{product: 1}}
		for _, c := range checkChaos(h, db) {
			if len(c.Violations) != 0 {
				t.Errorf("check %s on a clean history: %v", c.Name, c.Violations)
			}
		}
	})

	t.Run("bad", func(t *testing.T) {
		h := base
		h.Calls = []chaosCall{
			// 1: confirmed, never stored.
			place("u1", 1, chaosCall{Sale: sale, OrderID: "o1", Status: "CONFIRMED"}),
			// 2: pending, then rejected.
			place("u2", 2, chaosCall{Transport: "rest", HTTP: 202, Sale: sale, OrderID: "o2", Status: "PENDING"}),
			check("u2", 9, "o2", "REJECTED"),
			// 5: u4 holds o5, CheckOrder says order: null.
			check("u4", 9, "", ""),
			// 6: a 500.
			place("u5", 3, chaosCall{Transport: "rest", HTTP: 500, Code: codes.Internal, Message: "internal error"}),
			// 7: u4 won at +1 s and is told SOLD_OUT at +10 s.
			place("u4", 10, chaosCall{Code: codes.FailedPrecondition, Reason: "SOLD_OUT"}),
			// 8: and told ALREADY_ORDERED without the order id at +11 s.
			place("u4", 11, chaosCall{Code: codes.AlreadyExists, Reason: "ALREADY_ORDERED"}),
		}
		db := chaosDB{
			// 4: u3 twice in the sale. 3: 3 rows + 5 left != 3.
			Orders:   []chaosOrder{row("o3", "u3", 1), row("o4", "u3", 2), row("o5", "u4", 1)},
			Quantity: map[string]int{product: 5},
		}
		for _, c := range checkChaos(h, db) {
			if len(c.Violations) == 0 {
				t.Errorf("check %s found nothing in a history that breaks it", c.Name)
			}
			t.Logf("check %s: %v", c.Name, c.Violations)
		}
	})
}
