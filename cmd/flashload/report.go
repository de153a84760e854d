package main

import (
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/flashsale/flashsale/internal/grpcapi"
)

// Outcome classes of one call.
const (
	classOK        = "ok"
	classRejected  = "rejected"  // a definite refusal: no order was placed
	classThrottled = "throttled" // shed before a decision: no order was placed
	classAmbiguous = "ambiguous" // no definite answer: an order may exist
)

// namesAnOrder reports whether a refusal's reason is one the server gives
// for an order it took but cannot yet vouch for (not confirmed on a Redis
// replica, its write's outcome lost, its write still running): the order
// may exist, so the answer is ambiguous, not a refusal, though it asks for a
// retry like a shed call does.
func namesAnOrder(reason string) bool {
	switch reason {
	case grpcapi.ReasonOrderNotReplicated, grpcapi.ReasonOrderOutcomeUnknown, grpcapi.ReasonOrderInProgress:
		return true
	}
	return false
}

// failure is one non-success response, a row of the errors CSV.
type failure struct {
	Time      time.Time
	Op        string
	User      string
	Outcome   string
	Class     string
	Message   string
	LatencyMS float64
}

const maxFailures = 1_000_000

// recorder collects the outcomes of one kind of call (op) in one run.
type recorder struct {
	op string

	calls, ok, rejected, throttled, ambiguous atomic.Int64

	mu        sync.Mutex
	outcomes  map[string]int
	failures  []failure
	latencies []time.Duration
	acked     map[string]string // order id -> user id
}

func newRecorder(op string) *recorder {
	return &recorder{op: op, outcomes: map[string]int{}, acked: map[string]string{}}
}

// record counts one finished call. latency is zero when the transport does
// not report it per call (ghz reports it separately).
func (r *recorder) record(outcome, class, user, msg string, latency time.Duration) {
	r.calls.Add(1)
	switch class {
	case classOK:
		r.ok.Add(1)
	case classRejected:
		r.rejected.Add(1)
	case classThrottled:
		r.throttled.Add(1)
	default:
		r.ambiguous.Add(1)
	}
	r.mu.Lock()
	r.outcomes[outcome]++
	if latency > 0 {
		r.latencies = append(r.latencies, latency)
	}
	if class != classOK && len(r.failures) < maxFailures {
		r.failures = append(r.failures, failure{Time: time.Now(), Op: r.op, User: user, Outcome: outcome,
			Class: class, Message: msg, LatencyMS: float64(latency) / float64(time.Millisecond)})
	}
	r.mu.Unlock()
}

func (r *recorder) ack(orderID, userID string) {
	r.mu.Lock()
	r.acked[orderID] = userID
	r.mu.Unlock()
}

// OpSummary is the figures of one kind of call in a run.
type OpSummary struct {
	Op           string         `json:"op"`
	Calls        int64          `json:"calls"`
	OK           int64          `json:"ok"`
	Rejected     int64          `json:"rejected"`
	Throttled    int64          `json:"throttled"`
	Ambiguous    int64          `json:"ambiguous"`
	RPS          float64        `json:"rps"`
	OKPerSecond  float64        `json:"okPerSecond"`
	LatencyMS    Latency        `json:"latencyMs"`
	Outcomes     map[string]int `json:"outcomes"`
	TransportErr int64          `json:"transportErrors"`
}

// Latency is a latency distribution in milliseconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P90 float64 `json:"p90"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

func latencyOf(ds []time.Duration) Latency {
	if len(ds) == 0 {
		return Latency{}
	}
	slices.Sort(ds)
	at := func(q float64) float64 {
		i := int(q*float64(len(ds))+0.5) - 1
		i = max(0, min(i, len(ds)-1))
		return float64(ds[i]) / float64(time.Millisecond)
	}
	return Latency{P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: float64(ds[len(ds)-1]) / float64(time.Millisecond)}
}

func (r *recorder) summary(elapsed time.Duration, transportErrs int64) OpSummary {
	r.mu.Lock()
	defer r.mu.Unlock()
	secs := elapsed.Seconds()
	return OpSummary{
		Op: r.op, Calls: r.calls.Load(), OK: r.ok.Load(), Rejected: r.rejected.Load(),
		Throttled: r.throttled.Load(), Ambiguous: r.ambiguous.Load(),
		RPS: float64(r.calls.Load()) / secs, OKPerSecond: float64(r.ok.Load()) / secs,
		LatencyMS: latencyOf(r.latencies), Outcomes: maps(r.outcomes), TransportErr: transportErrs,
	}
}

func maps(m map[string]int) map[string]int {
	out := make(map[string]int, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// Summary is the JSON report of one flashload run (--out).
type Summary struct {
	Name        string    `json:"name"`
	Date        time.Time `json:"date"`
	Transport   string    `json:"transport"`
	Mode        string    `json:"mode"`
	Target      string    `json:"target"`
	Concurrency int       `json:"concurrency"`
	Connections int       `json:"connections,omitempty"`
	Rate        int       `json:"rate,omitempty"`
	Stock       int       `json:"stock"`
	Users       int       `json:"users"`
	Times       int       `json:"times"`
	ProductID   string    `json:"productId"`
	SaleID      string    `json:"saleId"`

	Setup struct {
		UsersHow string  `json:"usersHow"` // registered | minted
		Seconds  float64 `json:"seconds"`
		PerSec   float64 `json:"usersPerSecond"`
	} `json:"setup"`

	Seconds   float64     `json:"seconds"`
	Calls     int64       `json:"calls"`
	RPS       float64     `json:"rps"`
	Ops       []OpSummary `json:"ops"`
	Ceiling   *OpSummary  `json:"ceiling,omitempty"`
	Ratio     float64     `json:"ratioToCeiling,omitempty"`
	ClientCPU struct {
		UserSeconds   float64 `json:"userSeconds"`
		SystemSeconds float64 `json:"systemSeconds"`
		// CoresBusy is CPU seconds per wall second: near the machine's core
		// count, the harness itself was the bottleneck.
		CoresBusy float64 `json:"coresBusy"`
	} `json:"clientCpu"`

	Verify struct {
		Checked        bool        `json:"checked"`
		DrainSeconds   float64     `json:"drainSeconds"`
		OrdersInDB     int         `json:"ordersInDb"`
		Remaining      int         `json:"remaining"`
		UsersTried     int         `json:"usersTried"`
		Acknowledged   int         `json:"acknowledged"`
		PersistedPerSe float64     `json:"persistedPerSecond"`
		Violations     []Violation `json:"violations"`
	} `json:"verify"`

	// Timeline is the orders in PostgreSQL over the run (load and drain),
	// when flashload could read the database; the bench charts plot it.
	Timeline []TimePoint `json:"timeline,omitempty"`
}

func (s *Summary) print(w io.Writer) {
	fmt.Fprintf(w, "\n== %s: %s over %s, %d concurrent, %.1fs ==\n", s.Name, s.Mode, s.Transport, s.Concurrency, s.Seconds)
	if s.Setup.UsersHow != "" {
		fmt.Fprintf(w, "setup: %d users %s in %.2fs (%.0f/s), stock %d, product %s, sale %s\n",
			s.Users, s.Setup.UsersHow, s.Setup.Seconds, s.Setup.PerSec, s.Stock, s.ProductID, s.SaleID)
	}
	for _, op := range s.Ops {
		printOp(w, op)
	}
	if s.Ceiling != nil {
		printOp(w, *s.Ceiling)
		fmt.Fprintf(w, "ratio to ceiling: %.3f\n", s.Ratio)
	}
	fmt.Fprintf(w, "harness cpu: %.2fs user + %.2fs system = %.2f cores busy\n",
		s.ClientCPU.UserSeconds, s.ClientCPU.SystemSeconds, s.ClientCPU.CoresBusy)
	if s.Verify.Checked {
		fmt.Fprintf(w, "verify: %d orders in db (%.0f persisted/s), %d remaining, %d users tried, %d acknowledged, drained in %.2fs\n",
			s.Verify.OrdersInDB, s.Verify.PersistedPerSe, s.Verify.Remaining, s.Verify.UsersTried, s.Verify.Acknowledged, s.Verify.DrainSeconds)
		if len(s.Verify.Violations) == 0 {
			fmt.Fprintln(w, "invariants: all hold")
		}
		for _, v := range s.Verify.Violations {
			fmt.Fprintln(w, "VIOLATION", v)
		}
	}
}

func printOp(w io.Writer, op OpSummary) {
	fmt.Fprintf(w, "%-8s %8d calls %9.1f req/s  ok %d (%.1f/s)  p50 %.2fms p90 %.2fms p99 %.2fms max %.2fms  transport errors %d\n",
		op.Op, op.Calls, op.RPS, op.OK, op.OKPerSecond, op.LatencyMS.P50, op.LatencyMS.P90, op.LatencyMS.P99, op.LatencyMS.Max, op.TransportErr)
	keys := make([]string, 0, len(op.Outcomes))
	for k := range op.Outcomes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, op.Outcomes[k]))
	}
	fmt.Fprintf(w, "         outcomes: %s\n", strings.Join(parts, " "))
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

func writeFailuresCSV(path string, recs ...*recorder) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	w := csv.NewWriter(f)
	w.Write([]string{"time", "op", "user", "outcome", "class", "latency_ms", "message"})
	for _, r := range recs {
		r.mu.Lock()
		for _, x := range r.failures {
			lat := ""
			if x.LatencyMS > 0 {
				lat = strconv.FormatFloat(x.LatencyMS, 'f', 3, 64)
			}
			w.Write([]string{x.Time.UTC().Format(time.RFC3339Nano), x.Op, x.User, x.Outcome, x.Class, lat, x.Message})
		}
		r.mu.Unlock()
	}
	w.Flush()
	if err := w.Error(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
