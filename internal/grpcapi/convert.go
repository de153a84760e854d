package grpcapi

import (
	"encoding/base64"
	"time"

	"github.com/google/uuid"
	"google.golang.org/protobuf/types/known/timestamppb"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
	"github.com/flashsale/flashsale/internal/auth"
	"github.com/flashsale/flashsale/internal/order"
	"github.com/flashsale/flashsale/internal/product"
	"github.com/flashsale/flashsale/internal/sale"
)

// Page sizes of every List call.
const (
	defaultPageSize = 50
	maxPageSize     = 500
)

func ts(t time.Time) *timestamppb.Timestamp { return timestamppb.New(t.UTC()) }

func userToProto(u auth.User) *flashsalev1.User {
	role := flashsalev1.Role_ROLE_CUSTOMER
	if u.Role == auth.RoleAdmin {
		role = flashsalev1.Role_ROLE_ADMIN
	}
	return &flashsalev1.User{Id: u.ID.String(), Email: u.Email, Role: role, CreatedAt: ts(u.CreatedAt)}
}

func productToProto(p product.Product) *flashsalev1.Product {
	return &flashsalev1.Product{
		Id:          p.ID.String(),
		Name:        p.Name,
		Description: p.Description,
		PriceMinor:  p.PriceMinor,
		Currency:    p.Currency,
		Quantity:    p.Quantity,
		CreatedAt:   ts(p.CreatedAt),
	}
}

func stateToProto(s sale.State) flashsalev1.SaleState {
	switch s {
	case sale.StateUpcoming:
		return flashsalev1.SaleState_SALE_STATE_UPCOMING
	case sale.StateActive:
		return flashsalev1.SaleState_SALE_STATE_ACTIVE
	case sale.StateEnded:
		return flashsalev1.SaleState_SALE_STATE_ENDED
	case sale.StateSoldOut:
		return flashsalev1.SaleState_SALE_STATE_SOLD_OUT
	}
	return flashsalev1.SaleState_SALE_STATE_UNSPECIFIED
}

func saleToProto(s sale.Sale, state sale.State) *flashsalev1.FlashSale {
	return &flashsalev1.FlashSale{
		Id:        s.ID.String(),
		ProductId: s.ProductID.String(),
		StartsAt:  ts(s.StartsAt),
		EndsAt:    ts(s.EndsAt),
		State:     stateToProto(state),
		CreatedAt: ts(s.CreatedAt),
	}
}

func orderStatusToProto(s order.Status) flashsalev1.OrderStatus {
	switch s {
	case order.StatusPending:
		return flashsalev1.OrderStatus_ORDER_STATUS_PENDING
	case order.StatusConfirmed:
		return flashsalev1.OrderStatus_ORDER_STATUS_CONFIRMED
	case order.StatusRejected:
		return flashsalev1.OrderStatus_ORDER_STATUS_REJECTED
	}
	return flashsalev1.OrderStatus_ORDER_STATUS_UNSPECIFIED
}

func orderToProto(o order.Order) *flashsalev1.Order {
	return &flashsalev1.Order{
		Id:          o.ID.String(),
		FlashSaleId: o.SaleID.String(),
		ProductId:   o.ProductID.String(),
		UserId:      o.UserID.String(),
		Status:      orderStatusToProto(o.Status),
		CreatedAt:   ts(o.CreatedAt),
	}
}

// parsePage reads page_size and page_token. A page token is the last id of
// the previous page, opaque to clients.
func parsePage(fe *fieldErrors, size int32, token string) (after uuid.UUID, limit int) {
	switch {
	case size < 0:
		fe.add("page_size", "must not be negative")
	case size == 0:
		limit = defaultPageSize
	case size > maxPageSize:
		limit = maxPageSize
	default:
		limit = int(size)
	}
	if token == "" {
		return uuid.Nil, limit
	}
	raw, err := base64.RawURLEncoding.DecodeString(token)
	if err == nil {
		after, err = uuid.FromBytes(raw)
	}
	if err != nil {
		fe.add("page_token", "is not a token this server issued")
	}
	return after, limit
}

// nextPageToken is empty when the page was not full, so a client stops.
func nextPageToken(n, limit int, last uuid.UUID) string {
	if n < limit {
		return ""
	}
	return base64.RawURLEncoding.EncodeToString(last[:])
}
