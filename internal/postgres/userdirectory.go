package postgres

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/flashsale/flashsale/internal/auth"
	"github.com/flashsale/flashsale/internal/postgres/dbsqlc"
)

// usersChannel is where the users table's triggers announce every change
// (sql/migrations/00002_users_notify.sql).
const usersChannel = "flashsale_users"

// Timing of the directory's heartbeat: every heartbeatEvery it notifies its
// own channel and it is trusted only while the last of its own heartbeats
// came back less than staleAfter ago. A listener that is cut off, stuck or
// behind thus stops answering within staleAfter, and lookups go to the
// table until it has reconnected and reloaded.
const (
	heartbeatEvery = time.Second
	staleAfter     = 3 * time.Second
	retryMax       = 10 * time.Second
)

// userDirectory is every user's standing (role, disabled) in memory, so an
// authenticated call does not read the users table. It is loaded once and
// then kept current by the users table's notifications, which PostgreSQL
// sends in commit order; a change reaches every process as soon as its
// notification does. It answers only while its listener is known to be
// current (see staleAfter); otherwise, and for an id it does not hold (a
// user created a moment ago elsewhere, or gone), the caller asks the table.
type userDirectory struct {
	mu    sync.RWMutex
	users map[uuid.UUID]auth.Standing

	// heardNanos is when this process last heard its own heartbeat back
	// (UnixNano); zero while not following.
	heardNanos atomic.Int64
	// beat is this process's heartbeat payload, told apart from others'.
	beat string
	// sentNanos is when the last heartbeat was sent, lagNanos how long the
	// last one took to come back: how late a change reaches the directory.
	sentNanos, lagNanos atomic.Int64

	// heartbeatDone, when set (by tests), is called as a heartbeat goroutine ends.
	heartbeatDone func()
}

func newUserDirectory() *userDirectory {
	return &userDirectory{beat: "h " + rand.Text()}
}

// lookup returns the standing of id when the directory is current and holds it.
func (d *userDirectory) lookup(id uuid.UUID) (auth.Standing, bool) {
	if !d.current() {
		return auth.Standing{}, false
	}
	d.mu.RLock()
	st, ok := d.users[id]
	d.mu.RUnlock()
	return st, ok
}

func (d *userDirectory) current() bool {
	heard := d.heardNanos.Load()
	return heard != 0 && time.Since(time.Unix(0, heard)) < staleAfter
}

// follow keeps the directory current until ctx is done: it listens on a
// connection of its own, loads every user, applies each notification, and
// on any failure starts again (with a growing pause), answering nothing
// meanwhile.
func (d *userDirectory) follow(ctx context.Context, pool *pgxpool.Pool, log *slog.Logger) {
	wait := 100 * time.Millisecond
	for ctx.Err() == nil {
		began := time.Now()
		err := d.session(ctx, pool)
		d.heardNanos.Store(0)
		if ctx.Err() != nil {
			return
		}
		if time.Since(began) > time.Minute {
			wait = 100 * time.Millisecond
		}
		log.Warn("user directory: not following users; each call reads the users table until it is back",
			"err", err, "retry_in", wait)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, retryMax)
	}
}

// session is one connection's worth of following; it returns why it ended.
func (d *userDirectory) session(ctx context.Context, pool *pgxpool.Pool) (err error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	c, err := pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire: %w", err)
	}
	conn := c.Hijack() // its own for good: a listening connection is not shared
	defer func() {
		if cerr := conn.Close(context.WithoutCancel(ctx)); cerr != nil {
			err = errors.Join(err, fmt.Errorf("close the listening connection: %w", cerr))
		}
	}()
	if _, err := conn.Exec(ctx, "LISTEN "+usersChannel); err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	// Loaded after LISTEN: a change committed since is both in the snapshot
	// and in a notification still to be read, which applies it again.
	if err := d.load(ctx, pool); err != nil {
		return err
	}

	// The heartbeat is this session's: it ends with it, and the session
	// returns only once it has, so nothing of the directory's runs after
	// follow returns (and the store may close its pool).
	var beating sync.WaitGroup
	beating.Go(func() { d.heartbeat(ctx, cancel, dbsqlc.New(pool)) })
	defer beating.Wait()
	defer cancel(nil)

	for {
		n, err := conn.WaitForNotification(ctx)
		if err != nil {
			if cause := context.Cause(ctx); cause != nil {
				return cause
			}
			return fmt.Errorf("wait for notification: %w", err)
		}
		d.apply(n.Payload)
	}
}

// heartbeat notifies the users channel every heartbeatEvery and ends the
// session (cancel) once its heartbeats stop coming back.
func (d *userDirectory) heartbeat(ctx context.Context, cancel context.CancelCauseFunc, q *dbsqlc.Queries) {
	if d.heartbeatDone != nil {
		defer d.heartbeatDone()
	}
	t := time.NewTicker(heartbeatEvery)
	defer t.Stop()
	began := time.Now()
	for {
		bctx, done := context.WithTimeout(ctx, staleAfter)
		d.sentNanos.Store(time.Now().UnixNano())
		err := q.UsersHeartbeat(bctx, d.beat)
		done()
		if err != nil && ctx.Err() == nil {
			cancel(fmt.Errorf("heartbeat: %w", err))
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !d.current() && time.Since(began) > staleAfter {
			cancel(errors.New("heartbeat not heard back in time"))
			return
		}
	}
}

// load replaces the directory with every user in the table.
func (d *userDirectory) load(ctx context.Context, pool *pgxpool.Pool) error {
	rows, err := dbsqlc.New(pool).UserStandings(ctx)
	if err != nil {
		return fmt.Errorf("load users: %w", err)
	}
	users := make(map[uuid.UUID]auth.Standing, len(rows))
	for _, r := range rows {
		users[r.ID] = auth.Standing{Role: role(r.Role), Disabled: r.Disabled}
	}
	d.mu.Lock()
	d.users = users
	d.mu.Unlock()
	return nil
}

// apply makes one notification's change.
func (d *userDirectory) apply(payload string) {
	if payload == d.beat {
		now := time.Now().UnixNano()
		d.heardNanos.Store(now)
		if sent := d.sentNanos.Load(); sent != 0 {
			d.lagNanos.Store(now - sent)
		}
		return
	}
	f := strings.Fields(payload)
	d.mu.Lock()
	defer d.mu.Unlock()
	switch {
	case len(f) == 4 && f[0] == "u":
		if id, err := uuid.Parse(f[1]); err == nil {
			d.users[id] = auth.Standing{Role: role(f[2]), Disabled: f[3] == "true"}
		}
	case len(f) == 2 && f[0] == "d":
		if id, err := uuid.Parse(f[1]); err == nil {
			delete(d.users, id)
		}
	case len(f) == 1 && f[0] == "t":
		clear(d.users)
	}
}

// role returns the auth.Role constant for s, so that the directory's
// entries share the constants' bytes instead of each keeping its own copy
// (or, for a notification, the whole payload it was cut from).
func role(s string) auth.Role {
	switch r := auth.Role(s); r {
	case auth.RoleCustomer:
		return auth.RoleCustomer
	case auth.RoleAdmin:
		return auth.RoleAdmin
	default:
		return auth.Role(strings.Clone(s))
	}
}

// DirectoryStats is the user directory's standing, for metrics.
type DirectoryStats struct {
	// Current: the directory answers lookups (its heartbeat came back in time).
	Current bool
	// Lag is how long the last heartbeat took to come back: how late a
	// change to a user reaches this process. Since is how long ago it did.
	Lag, Since time.Duration
	// Users is how many users it holds.
	Users int
}

// DirectoryStats reads the user directory's standing.
func (s *Store) DirectoryStats() DirectoryStats {
	d := s.directory
	st := DirectoryStats{Current: d.current(), Lag: time.Duration(d.lagNanos.Load())}
	if heard := d.heardNanos.Load(); heard != 0 {
		st.Since = time.Since(time.Unix(0, heard))
	}
	d.mu.RLock()
	st.Users = len(d.users)
	d.mu.RUnlock()
	return st
}
