package grpcapi

import (
	"context"
	"errors"
	"log/slog"

	"github.com/google/uuid"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/genproto/googleapis/rpc/errdetails"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
	"github.com/flashsale/flashsale/internal/auth"
	"github.com/flashsale/flashsale/internal/order"
	"github.com/flashsale/flashsale/internal/sale"
)

// Orders places and reads orders.
type Orders interface {
	Place(ctx context.Context, userID, productID uuid.UUID) (order.Order, error)
	Check(ctx context.Context, userID, productID uuid.UUID) (sale.Sale, order.Order, bool, error)
	List(ctx context.Context, f order.ListFilter) ([]order.Order, error)
}

// HTTPCodeHeader is response metadata through which a handler asks the
// REST gateway for a status other than 200.
const HTTPCodeHeader = "x-http-code"

type orderServer struct {
	flashsalev1.UnimplementedOrderServiceServer
	orders   Orders
	outcomes *prometheus.CounterVec // by outcome: the ErrorInfo reason, the code, or the status
	log      *slog.Logger
}

func (s *orderServer) PlaceOrder(ctx context.Context, req *flashsalev1.PlaceOrderRequest) (*flashsalev1.PlaceOrderResponse, error) {
	if err := checkText(req); err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	caller, _ := auth.CallerFrom(ctx)
	var fe fieldErrors
	productID := parseID(&fe, "product_id", req.GetProductId())
	if err := fe.err(); err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	o, err := s.orders.Place(ctx, caller.UserID, productID)
	if err != nil {
		err = toStatus(ctx, s.log, err)
		s.outcomes.WithLabelValues(outcome(err)).Inc()
		traceOutcome(ctx, outcome(err), uuid.Nil)
		return nil, err
	}
	s.outcomes.WithLabelValues(o.Status.String()).Inc()
	traceOutcome(ctx, o.Status.String(), o.ID)
	if o.Status == order.StatusPending {
		// Accepted, not yet written: REST answers 202 (see httpapi).
		if err := grpc.SetHeader(ctx, metadata.Pairs(HTTPCodeHeader, "202")); err != nil {
			// The order is taken all the same; only REST's status is 200.
			s.log.WarnContext(ctx, "PENDING order answered without REST status 202", "order", o.ID, "err", err)
		}
	}
	return &flashsalev1.PlaceOrderResponse{Order: orderToProto(o)}, nil
}

// outcome labels a failed order by its ErrorInfo reason, else its code.
func outcome(err error) string {
	for _, f := range fixedStatuses {
		if err == f.status {
			return f.reason
		}
	}
	if _, ok := err.(*AlreadyOrderedError); ok {
		return ReasonAlreadyOrdered
	}
	st, _ := status.FromError(err)
	for _, d := range st.Details() {
		if info, ok := d.(*errdetails.ErrorInfo); ok {
			return info.GetReason()
		}
	}
	return st.Code().String()
}

func (s *orderServer) CheckOrder(ctx context.Context, req *flashsalev1.CheckOrderRequest) (*flashsalev1.CheckOrderResponse, error) {
	if err := checkText(req); err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	caller, _ := auth.CallerFrom(ctx)
	var fe fieldErrors
	productID := parseID(&fe, "product_id", req.GetProductId())
	if err := fe.err(); err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	sl, o, ok, err := s.orders.Check(ctx, caller.UserID, productID)
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	resp := &flashsalev1.CheckOrderResponse{FlashSaleId: sl.ID.String()}
	if ok {
		resp.Order = orderToProto(o)
		resp.Secured = o.Status == order.StatusConfirmed
	}
	return resp, nil
}

func (s *orderServer) ListOrders(ctx context.Context, req *flashsalev1.ListOrdersRequest) (*flashsalev1.ListOrdersResponse, error) {
	if err := checkText(req); err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	caller, _ := auth.CallerFrom(ctx)
	var fe fieldErrors
	after, limit := parsePage(&fe, req.GetPageSize(), req.GetPageToken())
	f := order.ListFilter{After: after, Limit: limit}
	if req.GetFlashSaleId() != "" {
		f.SaleID = parseID(&fe, "flash_sale_id", req.GetFlashSaleId())
	}
	if err := fe.err(); err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	if !caller.IsAdmin() {
		f.UserID = caller.UserID // a customer sees only their own orders
	}
	if f.UserID == uuid.Nil && !caller.IsAdmin() {
		return nil, toStatus(ctx, s.log, errors.New("listing orders without a caller"))
	}
	os, err := s.orders.List(ctx, f)
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	resp := &flashsalev1.ListOrdersResponse{Orders: make([]*flashsalev1.Order, 0, len(os))}
	for _, o := range os {
		resp.Orders = append(resp.Orders, orderToProto(o))
	}
	if len(os) > 0 {
		resp.NextPageToken = nextPageToken(len(os), limit, os[len(os)-1].ID)
	}
	return resp, nil
}
