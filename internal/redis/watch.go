package redis

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// RunID is the run_id of the Redis server: a random id each redis-server
// process picks at start, so a new one means a restart (which, without an
// AOF, lost every key) or a failover to another server.
func (c *Client) RunID(ctx context.Context) (string, error) {
	kv, err := c.info(ctx, "server")
	if err != nil {
		return "", err
	}
	id := kv["run_id"]
	if id == "" {
		return "", errors.New("redis info server: no run_id field")
	}
	return id, nil
}

// WatchConfig says what a Watcher does. Zero durations take the defaults.
type WatchConfig struct {
	// Poll is how often the server's run_id is read; default 1 s.
	Poll time.Duration
	// OnRestart is called once the server's run_id has changed and the new
	// server answers PING (it has loaded its data: a server loading its AOF
	// answers LOADING). While it returns an error it is called again at
	// each poll, so a reconcile that failed is retried. Nil: nothing to do.
	OnRestart func(ctx context.Context) error
	// OnFailover is called on a Redis Cluster, in place of OnRestart, once
	// the master serving some slots changed (a replica was promoted, slots
	// migrated) or restarted, and answers; moved holds those slots. While it
	// returns an error it is called again at each poll, with the slots of
	// the failed call and any that moved since. Nil: OnRestart is called.
	OnFailover func(ctx context.Context, moved *Moved) error
	// Durability, when set, is checked every DurabilityEvery (default 5 s),
	// which catches CONFIG SET appendonly no, and after a restart, before
	// OnRestart.
	Durability      *Durability
	DurabilityEvery time.Duration
	// Log hears when durability cannot be read; nil means slog.Default().
	Log *slog.Logger
}

// Watcher notices that the Redis server behind a Client changed, by polling
// its run_id (on a cluster: which node serves each slot as master, and that
// node's run_id), and re-checks its durability now and then. Run drives it.
type Watcher struct {
	c   *Client
	cfg WatchConfig
	// unreadable is set while durability checks fail (Run's goroutine only).
	unreadable bool
}

// NewWatcher returns a Watcher of c's server.
func NewWatcher(c *Client, cfg WatchConfig) *Watcher {
	if cfg.Poll <= 0 {
		cfg.Poll = time.Second
	}
	if cfg.DurabilityEvery <= 0 {
		cfg.DurabilityEvery = 5 * time.Second
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	return &Watcher{c: c, cfg: cfg}
}

// Run polls until ctx ends. The first run_id it reads is the baseline: a
// restart before that goes unnoticed, so callers check what they need
// (durability, a reconcile) at start themselves. A failed poll (Redis down)
// changes nothing; the next one tries again.
func (w *Watcher) Run(ctx context.Context) {
	if w.c.Cluster() {
		w.runCluster(ctx)
		return
	}
	t := time.NewTicker(w.cfg.Poll)
	defer t.Stop()
	var known string // the run_id last seen
	restarted := false
	lastCheck := time.Now()
	for {
		if id, err := w.runID(ctx); err == nil {
			if known != "" && id != known {
				restarted = true
			}
			known = id
		}
		if restarted && w.answers(ctx) {
			w.checkDurability(ctx)
			lastCheck = time.Now()
			restarted = false
			if w.cfg.OnRestart != nil && w.cfg.OnRestart(ctx) != nil {
				restarted = true // called again at the next poll
			}
		}
		if w.cfg.Durability != nil && time.Since(lastCheck) >= w.cfg.DurabilityEvery {
			w.checkDurability(ctx)
			lastCheck = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// probe bounds one poll's round trip, so a Redis that does not answer
// delays the next poll by at most this.
func (w *Watcher) probe(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, max(w.cfg.Poll, time.Second))
}

func (w *Watcher) runID(ctx context.Context) (string, error) {
	ctx, cancel := w.probe(ctx)
	defer cancel()
	return w.c.RunID(ctx)
}

func (w *Watcher) answers(ctx context.Context) bool {
	ctx, cancel := w.probe(ctx)
	defer cancel()
	return w.c.Ping(ctx) == nil
}

func (w *Watcher) checkDurability(ctx context.Context) {
	if w.cfg.Durability == nil {
		return
	}
	pctx, cancel := w.probe(ctx)
	defer cancel()
	err := w.cfg.Durability.Check(pctx)
	switch {
	case err == nil || errors.Is(err, ErrVolatile):
		// ErrVolatile is remembered for Accepting, and logged, by Check.
		if w.unreadable {
			w.cfg.Log.Info("whether Redis keeps an append-only file can be read again")
		}
		w.unreadable = false
	case ctx.Err() != nil:
		// Stopping.
	case !w.unreadable:
		// The last answer stands, and the next check tries again; logged
		// once until a read succeeds.
		w.unreadable = true
		w.cfg.Log.Warn("could not read whether Redis keeps an append-only file; the last answer stands", "err", err)
	}
}

// runCluster is Run on a Redis Cluster: it polls the slot map (CLUSTER
// SLOTS) and the run_id of every master, and reports the slots whose master
// changed. A slot without a master for now (the failover still under way)
// counts once the new one is known.
func (w *Watcher) runCluster(ctx context.Context) {
	t := time.NewTicker(w.cfg.Poll)
	defer t.Stop()
	var known *topology
	pending := &Moved{}
	lastCheck := time.Now()
	for {
		pctx, cancel := w.probe(ctx)
		if now, err := w.c.readTopology(pctx, known); err == nil {
			if known != nil {
				now.diff(known, pending)
			}
			known = now
		}
		cancel()
		if pending.Len() > 0 {
			w.checkDurability(ctx)
			lastCheck = time.Now()
			moved := pending
			pending = &Moved{}
			if err := w.onFailover(ctx, moved); err != nil {
				pending.merge(moved) // called again at the next poll
			}
		}
		if w.cfg.Durability != nil && time.Since(lastCheck) >= w.cfg.DurabilityEvery {
			w.checkDurability(ctx)
			lastCheck = time.Now()
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (w *Watcher) onFailover(ctx context.Context, moved *Moved) error {
	switch {
	case w.cfg.OnFailover != nil:
		return w.cfg.OnFailover(ctx, moved)
	case w.cfg.OnRestart != nil:
		return w.cfg.OnRestart(ctx)
	}
	return nil
}
