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
	"github.com/flashsale/flashsale/internal/order"
	"github.com/flashsale/flashsale/internal/product"
	"github.com/flashsale/flashsale/internal/sale"
)

// Sales reads flash sales (and the products they sell, for their stock).
type Sales interface {
	ProductGet(ctx context.Context, id uuid.UUID) (product.Product, error)
	SaleGet(ctx context.Context, id uuid.UUID) (sale.Sale, error)
	SaleList(ctx context.Context, f sale.ListFilter) ([]sale.Sale, error)
}

// SaleService creates sales and tells a product's sale status
// (order.Service): in the sync and queue modes both involve the admission
// gate, which the service owns.
type SaleService interface {
	CreateSale(ctx context.Context, s sale.Sale) (sale.Sale, error)
	SaleStatus(ctx context.Context, productID uuid.UUID) (order.SaleStatus, error)
}

type flashSaleServer struct {
	flashsalev1.UnimplementedFlashSaleServiceServer
	sales      Sales
	service    SaleService
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
	sl, err := s.service.CreateSale(ctx, sale.Sale{ID: id, ProductID: productID, StartsAt: startsAt, EndsAt: endsAt, CreatedAt: now})
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

// saleStatus is the product's sale status (order.Service.SaleStatus) as the API shows it.
func (s *flashSaleServer) saleStatus(ctx context.Context, productID uuid.UUID) (*flashsalev1.GetSaleStatusResponse, error) {
	st, err := s.service.SaleStatus(ctx, productID)
	if err != nil {
		return nil, err
	}
	return &flashsalev1.GetSaleStatusResponse{
		State:       stateToProto(st.State),
		FlashSaleId: st.Sale.ID.String(),
		ProductId:   productID.String(),
		StartsAt:    ts(st.Sale.StartsAt),
		EndsAt:      ts(st.Sale.EndsAt),
		Remaining:   st.Remaining,
		ServerTime:  ts(st.At),
	}, nil
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
