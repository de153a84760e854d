package order

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/product"
	"github.com/flashsale/flashsale/internal/sale"
)

// Store is what the order service needs from the database.
type Store interface {
	ProductGet(ctx context.Context, id uuid.UUID) (product.Product, error)
	SaleOpen(ctx context.Context, productID uuid.UUID, now time.Time) (sale.Sale, error)
	SalesByProduct(ctx context.Context, productID uuid.UUID) ([]sale.Sale, error)
	OrderPlace(ctx context.Context, o Order) (Order, error)
	OrderBySaleUser(ctx context.Context, saleID, userID uuid.UUID) (Order, error)
	OrderList(ctx context.Context, f ListFilter) ([]Order, error)
}

// Service places and reads orders. In direct mode every order is one
// PostgreSQL transaction: insert the order, take one unit of stock.
type Service struct {
	store Store
	now   func() time.Time
}

// NewService returns a Service over store; now is the clock the sale window
// is judged by.
func NewService(store Store, now func() time.Time) *Service {
	return &Service{store: store, now: now}
}

// Place buys one unit of the product for the user in the product's sale that
// is open now. It returns product.ErrNotFound, ErrSaleNotActive, ErrSoldOut or
// ErrAlreadyOrdered when the order cannot be taken.
func (s *Service) Place(ctx context.Context, userID, productID uuid.UUID) (Order, error) {
	now := s.now()
	sl, err := s.openSale(ctx, productID, now)
	if err != nil {
		return Order{}, err
	}
	id, err := uuid.NewV7()
	if err != nil {
		return Order{}, fmt.Errorf("order id: %w", err)
	}
	return s.store.OrderPlace(ctx, Order{
		ID:        id,
		SaleID:    sl.ID,
		ProductID: productID,
		UserID:    userID,
		Status:    StatusConfirmed,
		CreatedAt: now,
	})
}

// openSale is the product's sale open at now; ErrSaleNotActive when there is
// none, product.ErrNotFound when the product does not exist.
func (s *Service) openSale(ctx context.Context, productID uuid.UUID, now time.Time) (sale.Sale, error) {
	sl, err := s.store.SaleOpen(ctx, productID, now)
	if errors.Is(err, sale.ErrNotFound) {
		if _, err := s.store.ProductGet(ctx, productID); err != nil {
			return sale.Sale{}, err
		}
		return sale.Sale{}, ErrSaleNotActive
	}
	return sl, err
}

// Check finds the user's order in the product's current sale (open now, else
// the next, else the latest). It returns that sale and the order; the order is
// found when ok. It returns product.ErrNotFound or sale.ErrNotFound when there
// is no such product or it never had a sale.
func (s *Service) Check(ctx context.Context, userID, productID uuid.UUID) (sl sale.Sale, o Order, ok bool, err error) {
	sales, err := s.store.SalesByProduct(ctx, productID)
	if err != nil {
		return sale.Sale{}, Order{}, false, err
	}
	sl, found := sale.Current(sales, s.now())
	if !found {
		if _, err := s.store.ProductGet(ctx, productID); err != nil {
			return sale.Sale{}, Order{}, false, err
		}
		return sale.Sale{}, Order{}, false, sale.ErrNotFound
	}
	o, err = s.store.OrderBySaleUser(ctx, sl.ID, userID)
	if errors.Is(err, ErrNotFound) {
		return sl, Order{}, false, nil
	}
	if err != nil {
		return sale.Sale{}, Order{}, false, err
	}
	return sl, o, true, nil
}

// List returns a page of orders chosen by f.
func (s *Service) List(ctx context.Context, f ListFilter) ([]Order, error) {
	return s.store.OrderList(ctx, f)
}
