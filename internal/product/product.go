// Package product describes the things on sale and the rules for creating them.
package product

import (
	"errors"
	"time"

	"github.com/google/uuid"
)

// ErrNotFound: no such product.
var ErrNotFound = errors.New("product not found")

// Product is an item with limited stock. Quantity is what is left.
type Product struct {
	ID          uuid.UUID
	Name        string
	Description string
	PriceMinor  int64  // price in minor units of Currency
	Currency    string // ISO 4217, upper case
	Quantity    int32
	CreatedAt   time.Time
}
