package main

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/flashsale/flashsale/internal/telemetry"
)

// TestTracePlaceOrder: one REST PlaceOrder carrying a W3C traceparent, in
// each order mode, yields the expected span tree under the caller's trace
// id: the HTTP request, the server's call under it (the gateway calls in
// process: no client span, no second hop), the
// gate's admit script, and the write: its queries in direct mode; in sync
// and queue modes the order's commit span, the batch under it with its
// queries and the settle script. In queue mode the worker's spans join the
// trace through the stream entry.
func TestTracePlaceOrder(t *testing.T) {
	const placeOrder = "flashsale.v1.OrderService/PlaceOrder"
	const route = "POST /v1/products/{product_id}/orders"
	tests := []struct {
		mode string
		code int
		// want lists "parent > child" edges by span name that must be in
		// the trace; "caller" is the client's own span.
		want []string
	}{
		{"direct", 200, []string{
			"caller > " + route,
			route + " > " + placeOrder,
			placeOrder + " > OrderInsert",
		}},
		{"sync", 200, []string{
			"caller > " + route,
			route + " > " + placeOrder,
			placeOrder + " > EVALSHA admit",
			placeOrder + " > order.commit",
			"order.commit > order.batch",
			"order.batch > OrderInsertBatchTakeStock",
			"order.batch > EVALSHA settle",
		}},
		{"queue", 202, []string{
			"caller > " + route,
			route + " > " + placeOrder,
			placeOrder + " > EVALSHA admit",
			placeOrder + " > order.commit",
			"order.commit > order.batch",
			"order.batch > OrderInsertBatchTakeStock",
			"order.batch > EVALSHA settle",
		}},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			exp := tracetest.NewInMemoryExporter()
			tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
			t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
			s := startTracedServer(t, tp, "ORDER_MODE="+tt.mode)
			product, _, _ := saleOpenNow(t, s, 5)
			token := registerUsers(t, s, 1)[0]

			caller := trace.NewSpanContext(trace.SpanContextConfig{
				TraceID:    trace.TraceID{0x0f, 0x1a, 0x5e, 0x55, 0xa1, 0xe0, byte(len(tt.mode)), 1, 2, 3, 4, 5, 6, 7, 8, 9},
				SpanID:     trace.SpanID{0xca, 0x11, 0xe5, 1, 2, 3, 4, 5},
				TraceFlags: trace.FlagsSampled,
			})
			req, err := http.NewRequest("POST", s.baseURL+"/v1/products/"+product+"/orders", strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("traceparent", fmt.Sprintf("00-%s-%s-01", caller.TraceID(), caller.SpanID()))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.code {
				t.Fatalf("PlaceOrder: %d, want %d", resp.StatusCode, tt.code)
			}

			// The spans of the write end after the answer (queue mode, and
			// the batch's settle), so wait for every edge.
			var missing []string
			var spans []sdktrace.ReadOnlySpan
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
				spans = spansOf(exp, caller.TraceID())
				missing = missingEdges(spans, caller.SpanID(), tt.want)
				if len(missing) == 0 || time.Now().After(deadline) {
					break
				}
			}
			if len(missing) > 0 {
				t.Errorf("trace %s lacks %q; it has:\n%s", caller.TraceID(), missing, spanTree(spans, caller.SpanID()))
			}
			if testing.Verbose() {
				t.Logf("trace %s:\n%s", caller.TraceID(), spanTree(spans, caller.SpanID()))
			}
			for _, sp := range spans {
				if sp.Name() == "order.batch" && len(sp.Links()) == 0 {
					t.Errorf("order.batch has no link to its orders")
				}
			}
		})
	}
}

// spansOf is every ended span of the trace.
func spansOf(exp *tracetest.InMemoryExporter, id trace.TraceID) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range exp.GetSpans().Snapshots() {
		if s.SpanContext().TraceID() == id {
			out = append(out, s)
		}
	}
	return out
}

// missingEdges is the edges of want ("parent > child" by name) that no
// pair of spans makes; the parent "caller" is the span callerID.
func missingEdges(spans []sdktrace.ReadOnlySpan, callerID trace.SpanID, want []string) []string {
	names := map[trace.SpanID]string{callerID: "caller"}
	for _, s := range spans {
		names[s.SpanContext().SpanID()] = s.Name()
	}
	have := map[string]bool{}
	for _, s := range spans {
		have[names[s.Parent().SpanID()]+" > "+s.Name()] = true
	}
	var missing []string
	for _, w := range want {
		if !have[w] {
			missing = append(missing, w)
		}
	}
	return missing
}

// spanTree draws the trace as an indented tree under the caller's span.
func spanTree(spans []sdktrace.ReadOnlySpan, callerID trace.SpanID) string {
	children := map[trace.SpanID][]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		children[s.Parent().SpanID()] = append(children[s.Parent().SpanID()], s)
	}
	var b strings.Builder
	var walk func(id trace.SpanID, depth int)
	walk = func(id trace.SpanID, depth int) {
		kids := children[id]
		slices.SortFunc(kids, func(a, b sdktrace.ReadOnlySpan) int { return a.StartTime().Compare(b.StartTime()) })
		for _, s := range kids {
			fmt.Fprintf(&b, "%s%s (%s, %d links)\n", strings.Repeat("  ", depth), s.Name(), s.SpanKind(), len(s.Links()))
			walk(s.SpanContext().SpanID(), depth+1)
		}
	}
	b.WriteString("caller\n")
	walk(callerID, 1)
	return b.String()
}

// TestTraceHeadSampling: with the server's own provider sampling no new
// trace (parentbased_traceidratio at 0), a REST PlaceOrder whose caller
// sampled its trace is traced through, the batch write included, and one
// without a traceparent, or with an unsampled one, leaves no span at all.
func TestTraceHeadSampling(t *testing.T) {
	sampler, err := telemetry.Sampler("parentbased_traceidratio", 0)
	if err != nil {
		t.Fatal(err)
	}
	exp := tracetest.NewInMemoryExporter()
	tp := telemetry.NewProvider(sampler, sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(t.Context()) })
	s := startTracedServer(t, tp, "ORDER_MODE=sync")
	product, _, _ := saleOpenNow(t, s, 5)
	tokens := registerUsers(t, s, 3)
	place := func(token, traceparent string) {
		t.Helper()
		req, err := http.NewRequest("POST", s.baseURL+"/v1/products/"+product+"/orders", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		if traceparent != "" {
			req.Header.Set("traceparent", traceparent)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("PlaceOrder: %d", resp.StatusCode)
		}
	}
	place(tokens[0], "")
	place(tokens[1], "00-0f1a5e55a1e00000000000000000000a-ca11e50000000001-00")
	time.Sleep(200 * time.Millisecond) // the batch's spans end after the answer
	if n := len(exp.GetSpans()); n != 0 {
		t.Fatalf("%d spans from requests the sampler left out, want none", n)
	}

	caller := "0f1a5e55a1e00000000000000000000b"
	place(tokens[2], "00-"+caller+"-ca11e50000000002-01")
	want := []string{
		"caller > POST /v1/products/{product_id}/orders",
		"POST /v1/products/{product_id}/orders > flashsale.v1.OrderService/PlaceOrder",
		"flashsale.v1.OrderService/PlaceOrder > EVALSHA admit",
		"flashsale.v1.OrderService/PlaceOrder > order.commit",
		"order.commit > order.batch",
		"order.batch > OrderInsertBatchTakeStock",
		"order.batch > EVALSHA settle",
	}
	id, _ := trace.TraceIDFromHex(caller)
	callerSpan, _ := trace.SpanIDFromHex("ca11e50000000002")
	var missing []string
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		missing = missingEdges(spansOf(exp, id), callerSpan, want)
		if len(missing) == 0 || time.Now().After(deadline) {
			break
		}
	}
	if len(missing) > 0 {
		t.Errorf("sampled caller's trace lacks %q; it has:\n%s", missing, spanTree(spansOf(exp, id), callerSpan))
	}
	for _, sp := range exp.GetSpans() {
		if sp.SpanContext.TraceID() != id {
			t.Errorf("span %s in trace %s, outside the one sampled trace", sp.Name, sp.SpanContext.TraceID())
		}
	}
}
