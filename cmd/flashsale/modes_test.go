package main

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	flashsalev1 "github.com/flashsale/flashsale/gen/flashsale/v1"
)

// TestEveryMode runs one rush per order mode, buyers released together, and
// checks the database afterwards: every acknowledged order persisted (after
// the queue drains), nothing else, one per user, and stock accounted for.
func TestEveryMode(t *testing.T) {
	const stock, users = 20, 60
	for _, mode := range []string{"direct", "sync", "queue"} {
		t.Run(mode, func(t *testing.T) {
			s := startServer(t, "ORDER_MODE="+mode, "ORDERS_BATCH_SIZE=16")
			product, saleID, _ := saleOpenNow(t, s, stock)
			tokens := registerUsers(t, s, users)
			orders := flashsalev1.NewOrderServiceClient(s.conn)

			var (
				mu       sync.Mutex
				acked    = map[string]bool{} // order ids the server acknowledged
				outcomes = map[codes.Code]int{}
				wg       sync.WaitGroup
			)
			start := make(chan struct{})
			for i, token := range tokens {
				tries := 1 + i%2 // every other buyer tries twice at once
				for range tries {
					wg.Go(func() {
						<-start
						resp, err := orders.PlaceOrder(bearer(context.Background(), token), &flashsalev1.PlaceOrderRequest{ProductId: product})
						mu.Lock()
						defer mu.Unlock()
						outcomes[status.Code(err)]++
						if err == nil {
							acked[resp.GetOrder().GetId()] = true
						}
					})
				}
			}
			close(start)
			wg.Wait()
			t.Logf("%s: outcomes %v", mode, outcomes)
			for code := range outcomes {
				if code != codes.OK && code != codes.FailedPrecondition && code != codes.AlreadyExists {
					t.Errorf("unexpected outcome %v", code)
				}
			}
			if len(acked) != stock {
				t.Errorf("acknowledged %d orders, want %d (stock < buyers)", len(acked), stock)
			}

			db, err := pgx.Connect(t.Context(), s.cfg.DatabaseURL)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close(context.Background())
			saleUUID := uuid.MustParse(saleID)
			deadline := time.Now().Add(30 * time.Second)
			var n int
			for {
				if err := db.QueryRow(t.Context(), `SELECT count(*) FROM orders WHERE flash_sale_id = $1`, saleUUID).Scan(&n); err != nil {
					t.Fatal(err)
				}
				if n >= len(acked) || time.Now().After(deadline) {
					break
				}
				time.Sleep(50 * time.Millisecond) // queue mode: workers drain
			}
			rows, err := db.Query(t.Context(), `SELECT id, user_id FROM orders WHERE flash_sale_id = $1`, saleUUID)
			if err != nil {
				t.Fatal(err)
			}
			persisted, buyers := map[string]bool{}, map[uuid.UUID]bool{}
			for rows.Next() {
				var id, user uuid.UUID
				if err := rows.Scan(&id, &user); err != nil {
					t.Fatal(err)
				}
				if buyers[user] {
					t.Errorf("user %s has two orders", user)
				}
				buyers[user] = true
				persisted[id.String()] = true
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			for id := range acked {
				if !persisted[id] {
					t.Errorf("acknowledged order %s is not in the database", id)
				}
			}
			for id := range persisted {
				if !acked[id] {
					t.Errorf("order %s in the database was never acknowledged", id)
				}
			}
			var remaining int
			if err := db.QueryRow(t.Context(), `SELECT quantity FROM products WHERE id = $1`, uuid.MustParse(product)).Scan(&remaining); err != nil {
				t.Fatal(err)
			}
			if remaining+len(persisted) != stock || remaining < 0 {
				t.Errorf("remaining %d + sold %d != initial %d", remaining, len(persisted), stock)
			}
			if mode != "direct" {
				// Every persisted order went through a timed batch.
				if n := metricValue(t, s.baseURL, "flashsale_order_batch_size_sum"); n < float64(len(persisted)) {
					t.Errorf("flashsale_order_batch_size_sum = %v, want at least the %d orders persisted", n, len(persisted))
				}
			}
		})
	}
}
