// Package auth holds users and their credentials: password hashing, access
// tokens, and the caller carried in a request's context.
package auth

import (
	"errors"
	"time"

	"github.com/google/uuid"
)

// Errors returned by the auth rules and by stores of users.
var (
	// ErrInvalidCredentials: unknown email or wrong password; deliberately one error for both.
	ErrInvalidCredentials = errors.New("invalid email or password")
	// ErrEmailTaken: an account with this email exists.
	ErrEmailTaken = errors.New("email already registered")
	// ErrUserNotFound: no such user.
	ErrUserNotFound = errors.New("user not found")
	// ErrUnauthenticated: no token, or a token that is unsigned, expired, tampered
	// with, or names a user that is disabled or gone.
	ErrUnauthenticated = errors.New("unauthenticated")
	// ErrPermissionDenied: the caller is known but may not do this.
	ErrPermissionDenied = errors.New("permission denied")
)

// Role is what a user may do.
type Role string

// Roles. New accounts are customers; admins come from configuration or the CLI.
const (
	RoleCustomer Role = "customer"
	RoleAdmin    Role = "admin"
)

// User is an account without its credentials.
type User struct {
	ID        uuid.UUID
	Email     string
	Role      Role
	Disabled  bool
	CreatedAt time.Time
}

// Standing is what every authenticated call checks of its user: the role
// it acts with, and whether the account is disabled.
type Standing struct {
	Role     Role
	Disabled bool
}
