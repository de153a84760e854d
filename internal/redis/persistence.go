package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/redis/rueidis"
)

// AppendOnly reports whether Redis writes an append-only file, which queue
// mode needs so that a Redis restart keeps the queued orders. It reads INFO
// persistence rather than CONFIG GET, which managed Redis services often
// disable. On a cluster every node that answers must write one (a replica
// becomes a master in a failover); at least one must answer.
func (c *Client) AppendOnly(ctx context.Context) (bool, error) {
	if !c.Cluster() {
		return appendOnly(ctx, c.rc)
	}
	var errs []error
	answered := false
	for addr, n := range c.rc.Nodes() {
		on, err := appendOnly(ctx, n)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", addr, err))
			continue
		}
		if !on {
			return false, nil
		}
		answered = true
	}
	if !answered {
		return false, errors.Join(errs...)
	}
	return true, nil
}

func appendOnly(ctx context.Context, n rueidis.Client) (bool, error) {
	kv, err := infoOf(ctx, n, "persistence")
	if err != nil {
		return false, err
	}
	v, ok := kv["aof_enabled"]
	if !ok {
		return false, errors.New("redis info persistence: no aof_enabled field")
	}
	return v == "1", nil
}

// info reads one INFO section as field -> value (of some node, on a cluster).
func (c *Client) info(ctx context.Context, section string) (map[string]string, error) {
	return infoOf(ctx, c.rc, section)
}

// ErrVolatile is Durability's answer while Redis writes no append-only file
// and a volatile Redis is not allowed.
var ErrVolatile = errors.New("redis keeps no append-only file (appendonly no)")

// Durability remembers whether Redis wrote an append-only file at the last
// Check, so that queue mode can refuse orders without a round trip while it
// does not: a queued order lives only in Redis until a worker writes it, and
// a Redis restarted without an AOF has lost it. It is safe for concurrent use.
type Durability struct {
	c     *Client
	allow bool
	log   *slog.Logger

	mu    sync.Mutex   // serializes Check, so each change is logged once
	state atomic.Int32 // a durability*; read on every order, hence atomic
}

const (
	durabilityUnknown int32 = iota
	durabilityOn
	durabilityOff
)

// NewDurability returns a Durability of c's Redis that has not checked yet
// (it accepts until a Check finds no AOF). allowVolatile
// (ORDERS_QUEUE_ALLOW_VOLATILE) makes it accept without an AOF too; log
// hears of every change after the first Check.
func NewDurability(c *Client, allowVolatile bool, log *slog.Logger) *Durability {
	return &Durability{c: c, allow: allowVolatile, log: log}
}

// Check asks Redis now whether it writes an AOF and remembers the answer. It
// returns ErrVolatile when it does not and volatile is not allowed, and the
// error when Redis could not be asked (the last answer then stands).
func (d *Durability) Check(ctx context.Context) error {
	on, err := d.c.AppendOnly(ctx)
	if err != nil {
		return err
	}
	now := durabilityOff
	if on {
		now = durabilityOn
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	switch was := d.state.Swap(now); {
	case was == durabilityUnknown || was == now:
	case now == durabilityOff && d.allow:
		d.log.Warn("Redis stopped writing its append-only file; ORDERS_QUEUE_ALLOW_VOLATILE=true, so queue mode goes on taking orders that a Redis restart would lose")
	case now == durabilityOff:
		d.log.Error("Redis stopped writing its append-only file: queue mode refuses orders, and /readyz fails, until appendonly is yes again (or ORDERS_QUEUE_ALLOW_VOLATILE=true)")
	default:
		d.log.Info("Redis writes its append-only file again; queue mode takes orders")
	}
	return d.Accepting()
}

// Accepting returns ErrVolatile when the last Check found no AOF and
// volatile is not allowed, else nil. It does no I/O.
func (d *Durability) Accepting() error {
	if d.state.Load() == durabilityOff && !d.allow {
		return ErrVolatile
	}
	return nil
}

// Ping is Accepting, for /readyz: a queue-mode server that refuses orders
// is not ready.
func (d *Durability) Ping(context.Context) error {
	return d.Accepting()
}
