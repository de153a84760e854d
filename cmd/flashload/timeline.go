package main

import (
	"context"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// TimePoint is how many orders of the run's product were in PostgreSQL a
// number of seconds after the load began.
type TimePoint struct {
	Seconds   float64 `json:"s"`
	Persisted int     `json:"persisted"`
}

// timelineEvery is how often the timeline reads the product's stock.
const timelineEvery = 500 * time.Millisecond

// sampleTimeline reads the product's stock in PostgreSQL every
// timelineEvery from start until stop is called, and returns the orders
// persisted over time (the stock taken since the run began): the write
// path's throughput as it happened, queue mode's drain included.
func sampleTimeline(db *pgxpool.Pool, t target, start time.Time) (stop func() []TimePoint) {
	ctx, cancel := context.WithCancel(context.Background())
	var (
		mu     sync.Mutex
		points []TimePoint
		done   = make(chan struct{})
	)
	read := func() {
		var q int
		if err := db.QueryRow(ctx, `SELECT quantity FROM products WHERE id = $1`, t.ProductID).Scan(&q); err == nil {
			mu.Lock()
			points = append(points, TimePoint{Seconds: time.Since(start).Seconds(), Persisted: t.Stock - q})
			mu.Unlock()
		}
	}
	go func() {
		defer close(done)
		tick := time.NewTicker(timelineEvery)
		defer tick.Stop()
		for {
			read()
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() []TimePoint {
		cancel()
		<-done
		read() // the last word, after the drain
		mu.Lock()
		defer mu.Unlock()
		return points
	}
}
