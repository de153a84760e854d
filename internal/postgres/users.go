package postgres

import (
	"context"
	"errors"
	"log/slog"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/flashsale/flashsale/internal/auth"
	"github.com/flashsale/flashsale/internal/postgres/dbsqlc"
)

// UserCreate stores a new user with u's ID, Email, Role and Disabled; an empty
// Role means auth.RoleCustomer. The email is stored lower-case. It returns
// auth.ErrEmailTaken when an account has that email.
func (s *Store) UserCreate(ctx context.Context, u auth.User, passwordHash string) (auth.User, error) {
	role := u.Role
	if role == "" {
		role = auth.RoleCustomer
	}
	row, err := s.q.UserCreate(ctx, dbsqlc.UserCreateParams{
		ID:           u.ID,
		Email:        u.Email,
		PasswordHash: passwordHash,
		Role:         string(role),
		Disabled:     u.Disabled,
	})
	if err != nil {
		return auth.User{}, interpretError("user create", err)
	}
	return userFromRow(row), nil
}

// UserByEmail returns the user with that email (compared lower-case) and their
// password hash, or auth.ErrUserNotFound.
func (s *Store) UserByEmail(ctx context.Context, email string) (auth.User, string, error) {
	row, err := s.q.UserGetByEmail(ctx, email)
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.User{}, "", auth.ErrUserNotFound
	}
	if err != nil {
		return auth.User{}, "", interpretError("user by email", err)
	}
	return userFromRow(row), row.PasswordHash, nil
}

// UserStanding returns the role and disabled flag of the user with that id,
// or auth.ErrUserNotFound. Every authenticated call asks, so while
// FollowUsers keeps the in-memory directory current the answer comes from
// there; otherwise, and for an id the directory does not hold, concurrent
// lookups share a query (see userLoader).
func (s *Store) UserStanding(ctx context.Context, id uuid.UUID) (auth.Standing, error) {
	if st, ok := s.directory.lookup(id); ok {
		return st, nil
	}
	u, err := s.users.load(ctx, id)
	if err != nil {
		return auth.Standing{}, err
	}
	return auth.Standing{Role: u.Role, Disabled: u.Disabled}, nil
}

// FollowUsers keeps an in-memory directory of every user's standing current
// from the users table's notifications until ctx is done, so that
// UserStanding does not read the table. It holds one connection of the pool
// for itself, and logs to log when it loses track (UserStanding then reads
// the table until it has caught up again).
func (s *Store) FollowUsers(ctx context.Context, log *slog.Logger) {
	s.directory.follow(ctx, s.pool, log)
}

// UserUpsertAdmin makes sure an enabled admin with that email and password
// exists: it creates one with id, or promotes, re-enables and sets the
// password of the account that has the email (id is then unused). Running it
// again changes nothing.
func (s *Store) UserUpsertAdmin(ctx context.Context, id uuid.UUID, email, passwordHash string) (auth.User, error) {
	row, err := s.q.UserUpsertAdmin(ctx, dbsqlc.UserUpsertAdminParams{
		ID:           id,
		Email:        email,
		PasswordHash: passwordHash,
	})
	if err != nil {
		return auth.User{}, interpretError("user upsert admin", err)
	}
	return userFromRow(row), nil
}

// UserSetDisabled disables or re-enables a user. It returns
// auth.ErrUserNotFound when there is no such user.
func (s *Store) UserSetDisabled(ctx context.Context, id uuid.UUID, disabled bool) error {
	n, err := s.q.UserSetDisabled(ctx, dbsqlc.UserSetDisabledParams{ID: id, Disabled: disabled})
	if err != nil {
		return interpretError("user set disabled", err)
	}
	if n == 0 {
		return auth.ErrUserNotFound
	}
	return nil
}

func userFromRow(r dbsqlc.User) auth.User {
	return auth.User{
		ID:        r.ID,
		Email:     r.Email,
		Role:      auth.Role(r.Role),
		Disabled:  r.Disabled,
		CreatedAt: r.CreatedAt.UTC(),
	}
}
