package order

import (
	"context"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"
)

// tracerName names the spans this package starts.
const tracerName = "github.com/flashsale/flashsale/internal/order"

func tracerOf(tp trace.TracerProvider) trace.Tracer {
	if tp == nil {
		return nil
	}
	return tp.Tracer(tracerName)
}

// batchSpans are the spans of one batch write: an "order.commit" span in
// the trace of each sampled order (from its place call to its outcome,
// linked to the batch), and one "order.batch" span for the write itself,
// linked to every order's span. The batch span is the child of the first
// sampled order's commit span, so it is sampled whenever one of its
// orders is, and the queries and the settle script it runs are its
// children. A batch with no sampled order has no spans at all.
type batchSpans struct {
	batch   trace.Span
	commits []trace.Span // by order; nil for an order not sampled
}

// startBatch starts the spans of a batch whose orders were placed under
// the spans parents (invalid for an untraced order) and returns ctx with
// the batch span in it. It does nothing, and returns ctx and nil, when
// tracer is nil or no order is sampled.
func startBatch(ctx context.Context, tracer trace.Tracer, orders []Order, parents []trace.SpanContext) (context.Context, *batchSpans) {
	if tracer == nil {
		return ctx, nil
	}
	var b *batchSpans
	for i, p := range parents {
		if !p.IsSampled() {
			continue
		}
		if b == nil {
			b = &batchSpans{commits: make([]trace.Span, len(parents))}
		}
		_, b.commits[i] = tracer.Start(trace.ContextWithSpanContext(context.Background(), p), "order.commit",
			trace.WithAttributes(attribute.String("flashsale.order.id", orders[i].ID.String())))
	}
	if b == nil {
		return ctx, nil
	}
	links := make([]trace.Link, 0, len(parents))
	for _, p := range parents {
		if p.IsValid() {
			links = append(links, trace.Link{SpanContext: p})
		}
	}
	var first trace.Span
	for _, s := range b.commits {
		if s != nil {
			first = s
			break
		}
	}
	ctx, b.batch = tracer.Start(trace.ContextWithSpan(ctx, first), "order.batch",
		trace.WithLinks(links...), trace.WithAttributes(attribute.Int("flashsale.batch.orders", len(orders))))
	for _, s := range b.commits {
		if s != nil && s != first {
			s.AddLink(trace.Link{SpanContext: b.batch.SpanContext()})
		}
	}
	return ctx, b
}

// end ends the spans with the batch's outcome: err for the whole batch, or
// each order's own result.
func (b *batchSpans) end(results []error, err error) {
	if b == nil {
		return
	}
	if err != nil {
		b.batch.RecordError(err)
		b.batch.SetStatus(codes.Error, "batch failed")
	}
	b.batch.End()
	for i, s := range b.commits {
		if s == nil {
			continue
		}
		switch {
		case err != nil:
			s.SetStatus(codes.Error, "batch failed")
		case i < len(results):
			s.SetAttributes(attribute.String("flashsale.order.outcome", outcomeNames[OutcomeOf(results[i])]))
			if OutcomeOf(results[i]) == Dropped {
				s.RecordError(results[i])
				s.SetStatus(codes.Error, "order not stored")
			}
		}
		s.End()
	}
}

var outcomeNames = map[Outcome]string{
	Committed:         "committed",
	RejectedSoldOut:   "rejected_sold_out",
	RejectedDuplicate: "rejected_duplicate",
	Dropped:           "dropped",
}
