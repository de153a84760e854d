package postgres

import (
	"context"
	"errors"
	"time"

	"github.com/google/uuid"

	"github.com/flashsale/flashsale/internal/auth"
	"github.com/flashsale/flashsale/internal/postgres/dbsqlc"
)

// userLoader coalesces concurrent UserByID lookups, which every
// authenticated call makes: while its queries are in flight the next lookups
// queue, then leave together in one WHERE id = ANY(...). Under load that is
// one round trip for dozens of calls; idle, a lookup leaves at once.
type userLoader struct {
	q    *dbsqlc.Queries
	in   chan userLookup
	stop chan struct{}
	done chan struct{}
}

type userLookup struct {
	ctx context.Context
	id  uuid.UUID
	out chan userResult // buffered: the loader never blocks on it
}

type userResult struct {
	u   auth.User
	err error
}

// Bounds of the loader: lookups per query, and queries in flight at once.
const (
	maxUserBatch      = 500
	userQueriesAtOnce = 2
	userQueryTimeout  = 5 * time.Second
)

var errStoreClosed = errors.New("postgres store closed")

func newUserLoader(q *dbsqlc.Queries) *userLoader {
	l := &userLoader{q: q, in: make(chan userLookup, maxUserBatch), stop: make(chan struct{}), done: make(chan struct{})}
	go l.run()
	return l
}

// load returns the user with id, or auth.ErrUserNotFound.
func (l *userLoader) load(ctx context.Context, id uuid.UUID) (auth.User, error) {
	req := userLookup{ctx: ctx, id: id, out: make(chan userResult, 1)}
	select {
	case l.in <- req:
	case <-l.stop:
		return auth.User{}, errStoreClosed
	case <-ctx.Done():
		return auth.User{}, ctx.Err()
	}
	select {
	case r := <-req.out:
		return r.u, r.err
	case <-ctx.Done():
		return auth.User{}, ctx.Err()
	}
}

// close stops the loader after the queries in flight.
func (l *userLoader) close() {
	close(l.stop)
	<-l.done
}

func (l *userLoader) run() {
	slots := make(chan struct{}, userQueriesAtOnce)
	defer func() {
		for range userQueriesAtOnce {
			slots <- struct{}{} // wait for the queries in flight
		}
		close(l.done)
	}()
	for {
		var first userLookup
		select {
		case first = <-l.in:
		case <-l.stop:
			return
		}
		slots <- struct{}{}
		batch := []userLookup{first}
	fill:
		for len(batch) < maxUserBatch {
			select {
			case r := <-l.in:
				batch = append(batch, r)
			default:
				break fill
			}
		}
		go func() {
			defer func() { <-slots }()
			l.query(batch)
		}()
	}
}

func (l *userLoader) query(batch []userLookup) {
	ids := make([]uuid.UUID, 0, len(batch))
	for _, r := range batch {
		if r.ctx.Err() == nil {
			ids = append(ids, r.id)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), userQueryTimeout)
	defer cancel()
	var rows []dbsqlc.User
	var err error
	if len(ids) > 0 {
		rows, err = l.q.UsersGet(ctx, ids)
	}
	byID := make(map[uuid.UUID]auth.User, len(rows))
	for _, row := range rows {
		byID[row.ID] = userFromRow(row)
	}
	for _, r := range batch {
		switch u, ok := byID[r.id]; {
		case r.ctx.Err() != nil:
			r.out <- userResult{err: r.ctx.Err()}
		case err != nil:
			r.out <- userResult{err: interpretError("user by id", err)}
		case !ok:
			r.out <- userResult{err: auth.ErrUserNotFound}
		default:
			r.out <- userResult{u: u}
		}
	}
}
