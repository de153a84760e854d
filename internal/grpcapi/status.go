package grpcapi

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"time"

	"github.com/google/uuid"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/protoadapt"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/flashsale/flashsale/internal/auth"
	"github.com/flashsale/flashsale/internal/order"
	"github.com/flashsale/flashsale/internal/product"
	"github.com/flashsale/flashsale/internal/redis"
	"github.com/flashsale/flashsale/internal/sale"
)

// errorDomain is the ErrorInfo domain of every reason this API returns.
const errorDomain = "flashsale"

// Reasons carried in ErrorInfo, for clients to switch on.
const (
	ReasonSaleNotActive  = "SALE_NOT_ACTIVE"
	ReasonSoldOut        = "SOLD_OUT"
	ReasonAlreadyOrdered = "ALREADY_ORDERED"
	ReasonQueueBusy      = "QUEUE_BUSY"
	ReasonRateLimited    = "RATE_LIMITED"
	// ReasonOrderOutcomeUnknown: the order was sent to PostgreSQL but the
	// answer was lost; it may or may not be stored. ErrorInfo metadata
	// order_id names it: check it with CheckOrder, or retry.
	ReasonOrderOutcomeUnknown = "ORDER_OUTCOME_UNKNOWN"
	// ReasonOrderInProgress: the caller's earlier order in this sale
	// (ErrorInfo metadata order_id) is being written; retry shortly.
	ReasonOrderInProgress = "ORDER_IN_PROGRESS"
	// ReasonOrderNotReplicated: queue mode, the order (ErrorInfo metadata
	// order_id) was admitted but no Redis replica confirmed it in time, so
	// it is not acknowledged; retry, which answers ALREADY_ORDERED with it
	// if it survived.
	ReasonOrderNotReplicated = "ORDER_NOT_REPLICATED"
	// ReasonAuthBusy: as many password hashes are running as the server's
	// memory budget allows (AUTH_HASH_CONCURRENCY); retry shortly.
	ReasonAuthBusy = "AUTH_BUSY"
)

// metaOrderID is the ErrorInfo metadata key of the order an error concerns:
// the order a winner already holds (ALREADY_ORDERED) or one whose write has
// not ended (ORDER_OUTCOME_UNKNOWN, ORDER_IN_PROGRESS, ORDER_NOT_REPLICATED).
const metaOrderID = "order_id"

// rateLimited is a request refused by a rate limit; retry after the delay.
type rateLimited struct {
	scope      string // global, ip, user
	retryAfter time.Duration
}

func (e *rateLimited) Error() string { return e.scope + " rate limit exceeded" }

// invalidArgument is bad input: one violation per field.
type invalidArgument struct {
	violations []*errdetails.BadRequest_FieldViolation
}

func (e *invalidArgument) Error() string { return "invalid argument" }

// fieldErrors collects field violations while a request is checked.
type fieldErrors []*errdetails.BadRequest_FieldViolation

func (f *fieldErrors) add(field, description string) {
	*f = append(*f, &errdetails.BadRequest_FieldViolation{Field: field, Description: description})
}

// err is nil when nothing was added.
func (f fieldErrors) err() error {
	if len(f) == 0 {
		return nil
	}
	return &invalidArgument{violations: f}
}

// unavailable is implemented by errors of a dependency that cannot be reached
// for now (the store's, when PostgreSQL is down): the call may be retried.
type unavailable interface{ Unavailable() bool }

// fixedStatuses are the refusals most of a rush is answered with, built
// once: for these sentinels, returned as they are, the answer never changes,
// and building its details (an ErrorInfo packed into an Any) on every call
// was a twentieth of the server.
var fixedStatuses = [...]struct {
	domain error
	reason string
	status error
}{
	{order.ErrSoldOut, ReasonSoldOut, withDetails(codes.FailedPrecondition, order.ErrSoldOut.Error(), reason(ReasonSoldOut))},
	{order.ErrAlreadyOrdered, ReasonAlreadyOrdered, withDetails(codes.AlreadyExists, order.ErrAlreadyOrdered.Error(), reason(ReasonAlreadyOrdered))},
	{order.ErrSaleNotActive, ReasonSaleNotActive, withDetails(codes.FailedPrecondition, order.ErrSaleNotActive.Error(), reason(ReasonSaleNotActive))},
}

// toStatus turns an error from the domain into a gRPC status. It is the only
// place that does; anything it does not know is logged once and becomes
// Internal "internal error", so no cause leaks to the client. A known error
// is answered with its sentinel's own message, never err.Error(): the
// domain wraps errors with context for the log ("register: ...", a user
// id), which is no business of the client's.
func toStatus(ctx context.Context, log *slog.Logger, err error) error {
	if err == nil {
		return nil
	}
	for _, f := range fixedStatuses {
		if err == f.domain {
			return f.status
		}
	}
	// A winner's retry, answered as it comes from the order service. Its
	// status names the order, so it is built for each call.
	if already, ok := err.(*order.AlreadyOrderedError); ok {
		return AlreadyOrdered(already.OrderID)
	}
	// A status is the client's answer already; one wrapped in a chain
	// (status.FromError would put the chain in its message) is sent as it
	// was made.
	if _, ok := err.(interface{ GRPCStatus() *status.Status }); ok {
		return err
	}
	var wrapped interface{ GRPCStatus() *status.Status }
	if errors.As(err, &wrapped) && wrapped.GRPCStatus() != nil {
		return wrapped.GRPCStatus().Err()
	}
	var already *order.AlreadyOrderedError
	var inv *invalidArgument
	var av *auth.ValidationError
	var busy *order.BusyError
	var limited *rateLimited
	var down unavailable
	var netErr net.Error // a dependency (Redis, PostgreSQL) that cannot be reached
	switch {
	case errors.As(err, &already):
		return AlreadyOrdered(already.OrderID)
	// Before ErrUnavailable, which may wrap these: a write whose outcome is
	// unknown must not be answered "not written".
	case errors.Is(err, order.ErrOutcomeUnknown):
		log.WarnContext(ctx, "order outcome unknown", "err", err)
		return withDetails(codes.Unavailable, "the order may or may not be stored; check it with CheckOrder or retry",
			orderReason(ReasonOrderOutcomeUnknown, orderIDOf(err)), retryInfo(time.Second))
	case errors.Is(err, order.ErrNotReplicated):
		log.WarnContext(ctx, "order not confirmed on a Redis replica", "err", err)
		return withDetails(codes.Unavailable, order.ErrNotReplicated.Error(),
			orderReason(ReasonOrderNotReplicated, orderIDOf(err)), retryInfo(time.Second))
	case errors.Is(err, order.ErrInProgress):
		return withDetails(codes.Unavailable, order.ErrInProgress.Error()+"; retry shortly",
			orderReason(ReasonOrderInProgress, orderIDOf(err)), retryInfo(time.Second))
	case errors.As(err, &busy):
		return withDetails(codes.Unavailable, busy.Error(), reason(ReasonQueueBusy), retryInfo(busy.RetryAfter))
	case errors.Is(err, auth.ErrBusy):
		return withDetails(codes.Unavailable, auth.ErrBusy.Error()+"; retry shortly", reason(ReasonAuthBusy), retryInfo(time.Second))
	case errors.As(err, &limited):
		return withDetails(codes.ResourceExhausted, limited.Error(), reason(ReasonRateLimited), retryInfo(limited.retryAfter))
	case errors.Is(err, order.ErrUnavailable):
		log.WarnContext(ctx, "order not written", "err", err)
		return withDetails(codes.Unavailable, order.ErrUnavailable.Error(), retryInfo(time.Second))
	case errors.As(err, &down) && down.Unavailable(),
		errors.As(err, &netErr) && !errors.Is(err, context.DeadlineExceeded),
		redis.IsTransient(err): // LOADING after a restart, BUSY, READONLY, ...
		log.WarnContext(ctx, "dependency unavailable", "err", err)
		return withDetails(codes.Unavailable, "service temporarily unavailable", retryInfo(time.Second))
	case errors.As(err, &inv):
		return withDetails(codes.InvalidArgument, "invalid argument", &errdetails.BadRequest{FieldViolations: inv.violations})
	case errors.As(err, &av):
		br := &errdetails.BadRequest{}
		for _, v := range av.Violations {
			br.FieldViolations = append(br.FieldViolations, &errdetails.BadRequest_FieldViolation{Field: v.Field, Description: v.Description})
		}
		return withDetails(codes.InvalidArgument, "invalid argument", br)
	case errors.Is(err, sale.ErrInvalidWindow):
		return withDetails(codes.InvalidArgument, sale.ErrInvalidWindow.Error(), badRequest("ends_at", sale.ErrInvalidWindow.Error()))
	case errors.Is(err, sale.ErrEndsInPast):
		return withDetails(codes.InvalidArgument, sale.ErrEndsInPast.Error(), badRequest("ends_at", sale.ErrEndsInPast.Error()))
	case errors.Is(err, sale.ErrOverlap):
		return withDetails(codes.FailedPrecondition, sale.ErrOverlap.Error(), reason("SALE_OVERLAP"))
	case errors.Is(err, order.ErrSaleNotActive):
		return withDetails(codes.FailedPrecondition, order.ErrSaleNotActive.Error(), reason(ReasonSaleNotActive))
	case errors.Is(err, order.ErrSoldOut):
		return withDetails(codes.FailedPrecondition, order.ErrSoldOut.Error(), reason(ReasonSoldOut))
	case errors.Is(err, order.ErrAlreadyOrdered):
		return withDetails(codes.AlreadyExists, order.ErrAlreadyOrdered.Error(), reason(ReasonAlreadyOrdered))
	case errors.Is(err, product.ErrNotFound):
		return status.Error(codes.NotFound, product.ErrNotFound.Error())
	case errors.Is(err, sale.ErrNotFound):
		return status.Error(codes.NotFound, sale.ErrNotFound.Error())
	case errors.Is(err, order.ErrNotFound):
		return status.Error(codes.NotFound, order.ErrNotFound.Error())
	case errors.Is(err, auth.ErrUserNotFound):
		return status.Error(codes.NotFound, auth.ErrUserNotFound.Error())
	case errors.Is(err, auth.ErrEmailTaken):
		return withDetails(codes.AlreadyExists, auth.ErrEmailTaken.Error(), reason("EMAIL_TAKEN"))
	case errors.Is(err, auth.ErrInvalidCredentials):
		return status.Error(codes.Unauthenticated, auth.ErrInvalidCredentials.Error())
	case errors.Is(err, auth.ErrUnauthenticated):
		return status.Error(codes.Unauthenticated, "missing or invalid access token")
	case errors.Is(err, auth.ErrPermissionDenied):
		return status.Error(codes.PermissionDenied, "admin role required")
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, "request canceled")
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, "deadline exceeded")
	}
	log.ErrorContext(ctx, "internal error", "err", err)
	return status.Error(codes.Internal, "internal error")
}

func retryInfo(d time.Duration) *errdetails.RetryInfo {
	return &errdetails.RetryInfo{RetryDelay: durationpb.New(max(d, time.Second))}
}

func reason(r string) *errdetails.ErrorInfo {
	return &errdetails.ErrorInfo{Reason: r, Domain: errorDomain}
}

// orderReason is reason r with the order concerned in its metadata, when
// the error names one.
func orderReason(r string, id uuid.UUID) *errdetails.ErrorInfo {
	info := reason(r)
	if id != uuid.Nil {
		info.Metadata = map[string]string{metaOrderID: id.String()}
	}
	return info
}

// AlreadyOrderedError is the ALREADY_ORDERED status of a winner who
// orders again, naming the order they hold: a status error of its own type,
// so that a transport can answer it from a template around the order id
// (the REST facade does) instead of encoding the status each time.
type AlreadyOrderedError struct {
	OrderID uuid.UUID
	st      *status.Status
}

// AlreadyOrdered is the ALREADY_ORDERED status naming order id.
func AlreadyOrdered(id uuid.UUID) *AlreadyOrderedError {
	st := status.New(codes.AlreadyExists, order.ErrAlreadyOrdered.Error())
	if withInfo, err := st.WithDetails(orderReason(ReasonAlreadyOrdered, id)); err == nil {
		st = withInfo
	}
	return &AlreadyOrderedError{OrderID: id, st: st}
}

func (e *AlreadyOrderedError) Error() string { return e.st.Err().Error() }

// GRPCStatus is the status gRPC sends, with the ErrorInfo naming the order.
func (e *AlreadyOrderedError) GRPCStatus() *status.Status { return e.st }

// FixedStatuses are the refusals built once (SOLD_OUT, ALREADY_ORDERED
// without an order, SALE_NOT_ACTIVE), as toStatus returns them: the very
// same error values, so a transport can build its answer to each once too.
func FixedStatuses() []error {
	out := make([]error, len(fixedStatuses))
	for i, f := range fixedStatuses {
		out[i] = f.status
	}
	return out
}

// orderIDOf is the order an *order.OrderError in err's chain names, or uuid.Nil.
func orderIDOf(err error) uuid.UUID {
	var oe *order.OrderError
	if errors.As(err, &oe) {
		return oe.OrderID
	}
	return uuid.Nil
}

func badRequest(field, description string) *errdetails.BadRequest {
	return &errdetails.BadRequest{FieldViolations: []*errdetails.BadRequest_FieldViolation{{Field: field, Description: description}}}
}

func withDetails(c codes.Code, msg string, details ...protoadapt.MessageV1) error {
	st, err := status.New(c, msg).WithDetails(details...)
	if err != nil {
		return status.Error(c, msg)
	}
	return st.Err()
}
