package auth

import (
	"context"

	"github.com/google/uuid"
)

// Caller is the authenticated user a request acts for.
type Caller struct {
	UserID uuid.UUID
	Role   Role
}

// IsAdmin reports whether the caller has the admin role.
func (c Caller) IsAdmin() bool {
	return c.Role == RoleAdmin
}

type callerKey struct{}

// WithCaller returns a copy of ctx that carries c.
func WithCaller(ctx context.Context, c Caller) context.Context {
	return context.WithValue(ctx, callerKey{}, c)
}

// CallerFrom returns the caller stored in ctx by WithCaller, and false when
// the request is anonymous.
func CallerFrom(ctx context.Context) (Caller, bool) {
	c, ok := ctx.Value(callerKey{}).(Caller)
	return c, ok
}
