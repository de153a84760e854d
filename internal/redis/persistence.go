package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
)

// AppendOnly reports whether Redis writes an append-only file, which queue
// mode needs so that a Redis restart keeps the queued orders. It reads INFO
// persistence rather than CONFIG GET, which managed Redis services often
// disable.
func (c *Client) AppendOnly(ctx context.Context) (bool, error) {
	kv, err := c.info(ctx, "persistence")
	if err != nil {
		return false, err
	}
	v, ok := kv["aof_enabled"]
	if !ok {
		return false, errors.New("redis info persistence: no aof_enabled field")
	}
	return v == "1", nil
}

// info reads one INFO section as field -> value.
func (c *Client) info(ctx context.Context, section string) (map[string]string, error) {
	s, err := c.rc.Do(ctx, c.rc.B().Info().Section(section).Build()).ToString()
	if err != nil {
		return nil, fmt.Errorf("redis info %s: %w", section, err)
	}
	kv := map[string]string{}
	for line := range strings.Lines(s) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			kv[k] = v
		}
	}
	return kv, nil
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
