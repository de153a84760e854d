package httpapi

import (
	"bytes"
	"context"
	"net/http"

	"github.com/google/uuid"
	"github.com/grpc-ecosystem/grpc-gateway/v2/runtime"

	"github.com/flashsale/flashsale/internal/grpcapi"
)

// canned holds the REST answers to the rush's refusals, written once by
// the gateway's own error handler and replayed byte for byte: encoding a
// status with its ErrorInfo as JSON (protojson, through an Any) on every
// call cost more than the rest of a refusal.
//
//   - SOLD_OUT, SALE_NOT_ACTIVE and ALREADY_ORDERED without an order are
//     the same values every time (grpcapi.FixedStatuses);
//   - ALREADY_ORDERED naming the order (grpcapi.AlreadyOrderedError) is
//     the answer written for a placeholder id, split around it.
//
// A call whose answer would carry more (response metadata, trailers) goes
// to the error handler as before.
type canned struct {
	marshaler runtime.Marshaler // the answers are this marshaler's encoding
	fixed     map[error]cannedAnswer
	already   cannedAnswer // body is the part before the order id
	afterID   []byte       // the part after it
}

type cannedAnswer struct {
	code        int
	contentType string
	body        []byte
}

// placeholderOrder stands for the order id while the template is written.
var placeholderOrder = uuid.MustParse("0c0ffee0-0000-4000-8000-00000000beef")

func newCanned(mux *runtime.ServeMux, m runtime.Marshaler, handle runtime.ErrorHandlerFunc) *canned {
	c := &canned{marshaler: m, fixed: map[error]cannedAnswer{}}
	write := func(err error) cannedAnswer {
		var rec recorder
		r, _ := http.NewRequest(http.MethodPost, "/", http.NoBody)
		handle(context.Background(), mux, m, &rec, r, err)
		return cannedAnswer{code: rec.code, contentType: rec.header.Get("Content-Type"), body: rec.body.Bytes()}
	}
	for _, err := range grpcapi.FixedStatuses() {
		c.fixed[err] = write(err)
	}
	a := write(grpcapi.AlreadyOrdered(placeholderOrder))
	if before, after, ok := bytes.Cut(a.body, []byte(placeholderOrder.String())); ok && !bytes.Contains(after, []byte(placeholderOrder.String())) {
		c.already = cannedAnswer{code: a.code, contentType: a.contentType, body: before}
		c.afterID = after
	}
	return c
}

// answer writes err's canned answer and reports true, or reports false
// when err has none (or the call has metadata to forward).
func (c *canned) answer(ctx context.Context, m runtime.Marshaler, w http.ResponseWriter, err error) bool {
	if m != c.marshaler {
		return false
	}
	if md, ok := runtime.ServerMetadataFromContext(ctx); ok && (len(md.HeaderMD) > 0 || len(md.TrailerMD) > 0) {
		return false
	}
	if a, ok := c.fixed[err]; ok {
		a.write(w, a.body)
		return true
	}
	if ae, ok := err.(*grpcapi.AlreadyOrderedError); ok && c.already.body != nil {
		body := make([]byte, 0, len(c.already.body)+36+len(c.afterID))
		body = append(append(append(body, c.already.body...), ae.OrderID.String()...), c.afterID...)
		c.already.write(w, body)
		return true
	}
	return false
}

func (a cannedAnswer) write(w http.ResponseWriter, body []byte) {
	h := w.Header()
	h.Del("Trailer")
	h.Del("Transfer-Encoding")
	h.Set("Content-Type", a.contentType)
	w.WriteHeader(a.code)
	_, _ = w.Write(body) // a client gone away is no one's concern here
}

// recorder is the http.ResponseWriter the canned answers are written to.
type recorder struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *recorder) Header() http.Header {
	if r.header == nil {
		r.header = http.Header{}
	}
	return r.header
}

func (r *recorder) WriteHeader(code int) { r.code = code }

func (r *recorder) Write(p []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.body.Write(p)
}
