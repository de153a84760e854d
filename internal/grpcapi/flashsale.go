package grpcapi

import (
	"context"
	"log/slog"
	"time"

	"github.com/google/uuid"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
	"github.com/flashsale/flashsale/internal/product"
	"github.com/flashsale/flashsale/internal/sale"
)

// Sales is the store of flash sales (and the products they sell, for their stock).
type Sales interface {
	ProductGet(ctx context.Context, id uuid.UUID) (product.Product, error)
	SaleCreate(ctx context.Context, s sale.Sale) (sale.Sale, error)
	SaleGet(ctx context.Context, id uuid.UUID) (sale.Sale, error)
	SalesByProduct(ctx context.Context, productID uuid.UUID) ([]sale.Sale, error)
	SaleList(ctx context.Context, f sale.ListFilter) ([]sale.Sale, error)
}

type flashSaleServer struct {
	flashsalev1.UnimplementedFlashSaleServiceServer
	sales      Sales
	status     StatusReader
	reconciler Reconciler
	now        func() time.Time
	log        *slog.Logger
	// watch serves WatchSaleStatus; ips says who is calling, for its caps.
	watch *watchHub
	ips   *ClientIP
}

func (s *flashSaleServer) CreateFlashSale(ctx context.Context, req *flashsalev1.CreateFlashSaleRequest) (*flashsalev1.CreateFlashSaleResponse, error) {
	if err := checkText(req); err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	var fe fieldErrors
	productID := parseID(&fe, "product_id", req.GetProductId())
	if req.GetStartsAt() == nil {
		fe.add("starts_at", "is required")
	} else if err := req.GetStartsAt().CheckValid(); err != nil {
		fe.add("starts_at", "is not a valid timestamp")
	}
	if req.GetEndsAt() == nil {
		fe.add("ends_at", "is required")
	} else if err := req.GetEndsAt().CheckValid(); err != nil {
		fe.add("ends_at", "is not a valid timestamp")
	}
	if err := fe.err(); err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	now := s.now()
	startsAt, endsAt := req.GetStartsAt().AsTime(), req.GetEndsAt().AsTime()
	if err := sale.ValidateWindow(startsAt, endsAt, now); err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	sl, err := s.sales.SaleCreate(ctx, sale.Sale{ID: id, ProductID: productID, StartsAt: startsAt, EndsAt: endsAt, CreatedAt: now})
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	p, err := s.sales.ProductGet(ctx, productID)
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	return &flashsalev1.CreateFlashSaleResponse{FlashSale: saleToProto(sl, sl.StateAt(now, p.Quantity))}, nil
}

func (s *flashSaleServer) GetFlashSale(ctx context.Context, req *flashsalev1.GetFlashSaleRequest) (*flashsalev1.GetFlashSaleResponse, error) {
	if err := checkText(req); err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	var fe fieldErrors
	id := parseID(&fe, "id", req.GetId())
	if err := fe.err(); err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	sl, err := s.sales.SaleGet(ctx, id)
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	p, err := s.sales.ProductGet(ctx, sl.ProductID)
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	return &flashsalev1.GetFlashSaleResponse{FlashSale: saleToProto(sl, sl.StateAt(s.now(), p.Quantity))}, nil
}

func (s *flashSaleServer) ListFlashSales(ctx context.Context, req *flashsalev1.ListFlashSalesRequest) (*flashsalev1.ListFlashSalesResponse, error) {
	if err := checkText(req); err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	var fe fieldErrors
	after, limit := parsePage(&fe, req.GetPageSize(), req.GetPageToken())
	now := s.now()
	f := sale.ListFilter{Now: now, After: after, Limit: limit}
	for _, st := range req.GetStates() {
		switch st {
		case flashsalev1.SaleState_SALE_STATE_UPCOMING:
			f.Upcoming = true
		case flashsalev1.SaleState_SALE_STATE_ACTIVE, flashsalev1.SaleState_SALE_STATE_SOLD_OUT:
			f.Active = true
		case flashsalev1.SaleState_SALE_STATE_ENDED:
			f.Ended = true
		default:
			fe.add("states", "must be UPCOMING, ACTIVE, SOLD_OUT or ENDED")
		}
	}
	if len(req.GetStates()) == 0 {
		f.Upcoming, f.Active = true, true
	}
	if err := fe.err(); err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	sales, err := s.sales.SaleList(ctx, f)
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	resp := &flashsalev1.ListFlashSalesResponse{FlashSales: make([]*flashsalev1.FlashSale, 0, len(sales)), ServerTime: ts(now)}
	stock := map[uuid.UUID]int32{}
	for _, sl := range sales {
		q, ok := stock[sl.ProductID]
		if !ok {
			p, err := s.sales.ProductGet(ctx, sl.ProductID)
			if err != nil {
				return nil, toStatus(ctx, s.log, err)
			}
			q = p.Quantity
			stock[sl.ProductID] = q
		}
		resp.FlashSales = append(resp.FlashSales, saleToProto(sl, sl.StateAt(now, q)))
	}
	if len(sales) > 0 {
		resp.NextPageToken = nextPageToken(len(sales), limit, sales[len(sales)-1].ID)
	}
	return resp, nil
}

func (s *flashSaleServer) GetSaleStatus(ctx context.Context, req *flashsalev1.GetSaleStatusRequest) (*flashsalev1.GetSaleStatusResponse, error) {
	if err := checkText(req); err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	var fe fieldErrors
	productID := parseID(&fe, "product_id", req.GetProductId())
	if err := fe.err(); err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	st, err := s.saleStatus(ctx, productID)
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	return st, nil
}

// WatchSaleStatus sends the product's sale status at once, then whenever
// it changes, and at least every watchHeartbeat; the product's feed
// (watchHub) reads it for every watcher at once. Streams are capped per
// client address and in all.
func (s *flashSaleServer) WatchSaleStatus(req *flashsalev1.WatchSaleStatusRequest, stream grpc.ServerStreamingServer[flashsalev1.WatchSaleStatusResponse]) error {
	ctx := stream.Context()
	if err := checkText(req); err != nil {
		return toStatus(ctx, s.log, err)
	}
	var fe fieldErrors
	productID := parseID(&fe, "product_id", req.GetProductId())
	if err := fe.err(); err != nil {
		return toStatus(ctx, s.log, err)
	}
	release, err := s.watch.admit(limitKey(s.ips.fromContext(ctx)))
	if err != nil {
		return err
	}
	defer release()
	w, f := s.watch.subscribe(productID)
	defer s.watch.unsubscribe(w, f)
	for {
		select {
		case <-ctx.Done():
			return nil
		case u := <-w.updates:
			if u.err != nil {
				return toStatus(ctx, s.log, u.err)
			}
			if err := stream.Send(&flashsalev1.WatchSaleStatusResponse{Status: u.status}); err != nil {
				return err
			}
		}
	}
}

// saleStatus is the product's current sale (open now, else the next, else
// the latest) and its state, from the gate's cached status when the sale is
// open and the gate holds it, else from the product's stock.
func (s *flashSaleServer) saleStatus(ctx context.Context, productID uuid.UUID) (*flashsalev1.GetSaleStatusResponse, error) {
	sales, err := s.sales.SalesByProduct(ctx, productID)
	if err != nil {
		return nil, err
	}
	now := s.now()
	sl, ok := sale.Current(sales, now)
	if !ok {
		if _, err := s.sales.ProductGet(ctx, productID); err != nil {
			return nil, err
		}
		return nil, sale.ErrNotFound
	}
	state, remaining, ok := sale.State(0), int32(0), false
	if s.status != nil && sl.OpenAt(now) {
		if state, remaining, ok, err = s.status.SaleStatus(ctx, sl, now); err != nil {
			s.log.WarnContext(ctx, "cached sale status unavailable", "err", err)
			ok = false
		}
	}
	if !ok {
		p, err := s.sales.ProductGet(ctx, productID)
		if err != nil {
			return nil, err
		}
		state, remaining = sl.StateAt(now, p.Quantity), p.Quantity
	}
	return &flashsalev1.GetSaleStatusResponse{
		State:       stateToProto(state),
		FlashSaleId: sl.ID.String(),
		ProductId:   productID.String(),
		StartsAt:    ts(sl.StartsAt),
		EndsAt:      ts(sl.EndsAt),
		Remaining:   remaining,
		ServerTime:  ts(now),
	}, nil
}

// StatusReader answers a sale's state from the admission gate's cached
// status, without PostgreSQL.
type StatusReader interface {
	// SaleStatus is the state and remaining stock of the sale; ok is false
	// when the gate does not hold the sale (not loaded yet).
	SaleStatus(ctx context.Context, sl sale.Sale, now time.Time) (state sale.State, remaining int32, ok bool, err error)
}

// Reconciler rebuilds a sale's gate state from PostgreSQL.
type Reconciler interface {
	Reconcile(ctx context.Context, saleID uuid.UUID) (remaining, buyers int, err error)
}

func (s *flashSaleServer) ReconcileSale(ctx context.Context, req *flashsalev1.ReconcileSaleRequest) (*flashsalev1.ReconcileSaleResponse, error) {
	if err := checkText(req); err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	var fe fieldErrors
	id := parseID(&fe, "id", req.GetId())
	if err := fe.err(); err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	if s.reconciler == nil {
		return nil, status.Error(codes.FailedPrecondition, "ORDER_MODE=direct keeps no gate state to reconcile")
	}
	remaining, buyers, err := s.reconciler.Reconcile(ctx, id)
	if err != nil {
		return nil, toStatus(ctx, s.log, err)
	}
	return &flashsalev1.ReconcileSaleResponse{Remaining: int32(remaining), Buyers: int32(buyers)}, nil
}
