package grpcapi

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/rueidis"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/flashsale/flashsale/internal/auth"
	"github.com/flashsale/flashsale/internal/order"
	"github.com/flashsale/flashsale/internal/product"
	"github.com/flashsale/flashsale/internal/sale"
	"github.com/flashsale/flashsale/internal/testenv"
)

// downError is a dependency that cannot be reached, as the store reports it.
type downError struct{}

func (downError) Error() string     { return "connection refused" }
func (downError) Unavailable() bool { return true }

func TestToStatus(t *testing.T) {
	tests := []struct {
		err    error
		code   codes.Code
		reason string // ErrorInfo reason, "" for none
		field  string // first BadRequest field, "" for none
	}{
		{order.ErrSoldOut, codes.FailedPrecondition, ReasonSoldOut, ""},
		{fmt.Errorf("place: %w", order.ErrSoldOut), codes.FailedPrecondition, ReasonSoldOut, ""},
		{order.ErrSaleNotActive, codes.FailedPrecondition, ReasonSaleNotActive, ""},
		{order.ErrAlreadyOrdered, codes.AlreadyExists, ReasonAlreadyOrdered, ""},
		{sale.ErrOverlap, codes.FailedPrecondition, "SALE_OVERLAP", ""},
		{sale.ErrInvalidWindow, codes.InvalidArgument, "", "ends_at"},
		{sale.ErrEndsInPast, codes.InvalidArgument, "", "ends_at"},
		{product.ErrNotFound, codes.NotFound, "", ""},
		{sale.ErrNotFound, codes.NotFound, "", ""},
		{order.ErrNotFound, codes.NotFound, "", ""},
		{auth.ErrEmailTaken, codes.AlreadyExists, "EMAIL_TAKEN", ""},
		{auth.ErrInvalidCredentials, codes.Unauthenticated, "", ""},
		{auth.ErrUnauthenticated, codes.Unauthenticated, "", ""},
		{auth.ErrPermissionDenied, codes.PermissionDenied, "", ""},
		{context.DeadlineExceeded, codes.DeadlineExceeded, "", ""},
		{(&fieldErrors{{Field: "name", Description: "is required"}}).err(), codes.InvalidArgument, "", "name"},
		{&auth.ValidationError{Violations: []auth.FieldViolation{{Field: "password", Description: "too short"}}}, codes.InvalidArgument, "", "password"},
		{status.Error(codes.Unavailable, "queue busy"), codes.Unavailable, "", ""},
		{&order.BusyError{RetryAfter: 2 * time.Second}, codes.Unavailable, ReasonQueueBusy, ""},
		{&rateLimited{scope: "ip", retryAfter: time.Second}, codes.ResourceExhausted, ReasonRateLimited, ""},
		{fmt.Errorf("user by id: %w", downError{}), codes.Unavailable, "", ""},
		{fmt.Errorf("catalog: %w", &net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}), codes.Unavailable, "", ""},
		{errors.New("pq: relation does not exist"), codes.Internal, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			var logs bytes.Buffer
			got := status.Convert(toStatus(context.Background(), slog.New(slog.NewTextHandler(&logs, nil)), tt.err))
			if got.Code() != tt.code {
				t.Errorf("code = %v, want %v", got.Code(), tt.code)
			}
			var reason, field string
			for _, d := range got.Details() {
				switch d := d.(type) {
				case *errdetails.ErrorInfo:
					reason = d.GetReason()
					if d.GetDomain() != errorDomain {
						t.Errorf("domain = %q, want %q", d.GetDomain(), errorDomain)
					}
				case *errdetails.BadRequest:
					field = d.GetFieldViolations()[0].GetField()
				}
			}
			if reason != tt.reason {
				t.Errorf("reason = %q, want %q", reason, tt.reason)
			}
			if field != tt.field {
				t.Errorf("field = %q, want %q", field, tt.field)
			}
			if tt.code == codes.Internal {
				if got.Message() != "internal error" {
					t.Errorf("message = %q, want %q", got.Message(), "internal error")
				}
				if !strings.Contains(logs.String(), "relation does not exist") {
					t.Errorf("cause not logged: %q", logs.String())
				}
			} else if logs.Len() != 0 && tt.code != codes.Unavailable {
				t.Errorf("expected error logged: %q", logs.String())
			}
		})
	}
}

func TestParsePage(t *testing.T) {
	tests := []struct {
		size      int32
		token     string
		wantLimit int
		wantBad   string
	}{
		{0, "", defaultPageSize, ""},
		{10, "", 10, ""},
		{maxPageSize + 1, "", maxPageSize, ""},
		{-1, "", 0, "page_size"},
		{10, "not base64 !", 10, "page_token"},
		{10, "AAAA", 10, "page_token"},
	}
	for _, tt := range tests {
		var fe fieldErrors
		_, limit := parsePage(&fe, tt.size, tt.token)
		var bad string
		if len(fe) > 0 {
			bad = fe[0].GetField()
		}
		if limit != tt.wantLimit || bad != tt.wantBad {
			t.Errorf("parsePage(%d, %q) = limit %d, violation %q; want %d, %q", tt.size, tt.token, limit, bad, tt.wantLimit, tt.wantBad)
		}
	}
}

// TestOutcome: the outcome label is the ErrorInfo reason whether the status
// was built once (a bare sentinel) or for this call (a wrapped one), else
// the code.
func TestOutcome(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	for _, tc := range []struct {
		err  error
		want string
	}{
		{order.ErrSoldOut, ReasonSoldOut},
		{fmt.Errorf("place: %w", order.ErrSoldOut), ReasonSoldOut},
		{order.ErrAlreadyOrdered, ReasonAlreadyOrdered},
		{fmt.Errorf("place: %w", order.ErrSaleNotActive), ReasonSaleNotActive},
		{&order.AlreadyOrderedError{OrderID: uuid.New()}, ReasonAlreadyOrdered},
		{&order.OrderError{Err: order.ErrOutcomeUnknown, OrderID: uuid.New()}, ReasonOrderOutcomeUnknown},
		{&order.OrderError{Err: order.ErrInProgress, OrderID: uuid.New()}, ReasonOrderInProgress},
		{&order.OrderError{Err: order.ErrNotReplicated, OrderID: uuid.New()}, ReasonOrderNotReplicated},
		{errors.New("boom"), "Internal"},
	} {
		if got := outcome(toStatus(context.Background(), log, tc.err)); got != tc.want {
			t.Errorf("outcome(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
}

// errorDetails is a status's ErrorInfo and RetryInfo, nil when absent.
func errorDetails(st *status.Status) (*errdetails.ErrorInfo, *errdetails.RetryInfo) {
	var info *errdetails.ErrorInfo
	var retry *errdetails.RetryInfo
	for _, d := range st.Details() {
		switch d := d.(type) {
		case *errdetails.ErrorInfo:
			info = d
		case *errdetails.RetryInfo:
			retry = d
		}
	}
	return info, retry
}

// TestToStatusOrderErrors: the errors that name an order carry its id in
// the ErrorInfo metadata, and those worth retrying a RetryInfo (REST adds
// Retry-After from it).
func TestToStatusOrderErrors(t *testing.T) {
	id := uuid.MustParse("0190a8e4-0000-7000-8000-00000000002a")
	tests := []struct {
		name    string
		err     error
		code    codes.Code
		reason  string
		orderID string        // ErrorInfo metadata order_id, "" for none
		retry   time.Duration // RetryInfo delay, 0 for none
	}{
		{"already ordered, bare sentinel", order.ErrAlreadyOrdered, codes.AlreadyExists, ReasonAlreadyOrdered, "", 0},
		{"already ordered with the order", &order.AlreadyOrderedError{OrderID: id}, codes.AlreadyExists, ReasonAlreadyOrdered, id.String(), 0},
		{"already ordered, wrapped", fmt.Errorf("place: %w", &order.AlreadyOrderedError{OrderID: id}), codes.AlreadyExists, ReasonAlreadyOrdered, id.String(), 0},
		{"outcome unknown", &order.OrderError{Err: order.ErrOutcomeUnknown, OrderID: id}, codes.Unavailable, ReasonOrderOutcomeUnknown, id.String(), time.Second},
		{"outcome unknown inside unavailable", fmt.Errorf("%w: %w", order.ErrUnavailable, &order.OrderError{Err: order.ErrOutcomeUnknown, OrderID: id}), codes.Unavailable, ReasonOrderOutcomeUnknown, id.String(), time.Second},
		{"outcome unknown, bare sentinel", order.ErrOutcomeUnknown, codes.Unavailable, ReasonOrderOutcomeUnknown, "", time.Second},
		{"in progress", &order.OrderError{Err: order.ErrInProgress, OrderID: id}, codes.Unavailable, ReasonOrderInProgress, id.String(), time.Second},
		{"in progress, wrapped", fmt.Errorf("place: %w", &order.OrderError{Err: order.ErrInProgress, OrderID: id}), codes.Unavailable, ReasonOrderInProgress, id.String(), time.Second},
		{"not replicated", &order.OrderError{Err: order.ErrNotReplicated, OrderID: id}, codes.Unavailable, ReasonOrderNotReplicated, id.String(), time.Second},
		{"not written", fmt.Errorf("%w: connection refused", order.ErrUnavailable), codes.Unavailable, "", "", time.Second},
		{"queue busy", &order.BusyError{RetryAfter: 3 * time.Second}, codes.Unavailable, ReasonQueueBusy, "", 3 * time.Second},
		{"password hashing busy", fmt.Errorf("register: %w", auth.ErrBusy), codes.Unavailable, ReasonAuthBusy, "", time.Second},
		{"dependency down", downError{}, codes.Unavailable, "", "", time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := status.Convert(toStatus(context.Background(), slog.New(slog.DiscardHandler), tt.err))
			if st.Code() != tt.code {
				t.Errorf("code = %v, want %v", st.Code(), tt.code)
			}
			info, retry := errorDetails(st)
			if got := info.GetReason(); got != tt.reason {
				t.Errorf("reason = %q, want %q", got, tt.reason)
			}
			if info != nil && info.GetDomain() != errorDomain {
				t.Errorf("domain = %q, want %q", info.GetDomain(), errorDomain)
			}
			if got := info.GetMetadata()[metaOrderID]; got != tt.orderID {
				t.Errorf("metadata order_id = %q, want %q", got, tt.orderID)
			}
			if got := retry.GetRetryDelay().AsDuration(); got != tt.retry {
				t.Errorf("retry delay = %v, want %v", got, tt.retry)
			}
		})
	}
}

// redisErrors has the local Redis answer each message as an error reply,
// so the test gets the *rueidis.RedisError a real answer is.
func redisErrors(t *testing.T, msgs ...string) map[string]error {
	t.Helper()
	opt, err := rueidis.ParseURL(testenv.RedisURL())
	if err != nil {
		t.Fatal(err)
	}
	opt.DisableCache = true
	rc, err := rueidis.NewClient(opt)
	if err != nil {
		testenv.Missing(t, "redis not reachable at %s (set TEST_REDIS_URL): %v", testenv.RedisURL(), err)
	}
	defer rc.Close()
	out := map[string]error{}
	for _, msg := range msgs {
		err := rc.Do(t.Context(), rc.B().Eval().Script("return redis.error_reply(ARGV[1])").Numkeys(0).Arg(msg).Build()).Error()
		if _, ok := rueidis.IsRedisErr(err); !ok || err.Error() != msg {
			t.Fatalf("error reply %q came back as %v", msg, err)
		}
		out[msg] = err
	}
	return out
}

// TestToStatusRedisTransient: a Redis that cannot serve for now (loading
// its AOF after a restart, busy, failing over) is Unavailable with a
// RetryInfo, so REST answers 503 with Retry-After, never 500; any other
// Redis error is still internal.
func TestToStatusRedisTransient(t *testing.T) {
	transient := []string{
		"LOADING Redis is loading the dataset in memory",
		"BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSCRIPT.",
		"TRYAGAIN Multiple keys request during rehashing of slot",
		"MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.",
		"CLUSTERDOWN The cluster is down",
		"READONLY You can't write against a read only replica.",
		"NOREPLICAS Not enough good replicas to write.",
	}
	permanent := []string{
		"BUSYGROUP Consumer Group name already exists",
		"BUSYKEY Target key name already exists.",
		"WRONGTYPE Operation against a key holding the wrong kind of value",
		"NOSCRIPT No matching script.",
	}
	errs := redisErrors(t, append(transient, permanent...)...)
	log := slog.New(slog.DiscardHandler)
	for _, msg := range transient {
		for _, err := range []error{errs[msg], fmt.Errorf("sale status: %w", errs[msg])} {
			st := status.Convert(toStatus(context.Background(), log, err))
			_, retry := errorDetails(st)
			if st.Code() != codes.Unavailable || retry.GetRetryDelay().AsDuration() != time.Second {
				t.Errorf("toStatus(%q) = %v with retry %v, want Unavailable with a 1s RetryInfo", err, st.Code(), retry.GetRetryDelay().AsDuration())
			}
			if st.Message() != "service temporarily unavailable" {
				t.Errorf("toStatus(%q) message = %q; the cause must not reach the client", err, st.Message())
			}
		}
	}
	for _, err := range []error{errs[permanent[0]], errs[permanent[1]], errs[permanent[2]], errs[permanent[3]], rueidis.Nil} {
		if got := status.Code(toStatus(context.Background(), log, err)); got != codes.Internal {
			t.Errorf("toStatus(%q) = %v, want Internal", err, got)
		}
	}
}
