package redis_test

import (
	"context"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/rueidis"

	"github.com/flashsale/flashsale/internal/order"
	"github.com/flashsale/flashsale/internal/redis"
)

// BenchmarkGateAdmit admits distinct users to one product, as a drop's
// burst does, from parallel callers, against REDIS_BENCH_URL (a Redis of
// your own, such as `make cluster`'s; the figures mean little on a shared
// one), and reports besides ns/op Redis's own CPU per admission
// (redis-us/admit, from INFO commandstats: one product is one slot, one
// Redis thread, so 1e6 over it is what one core admits for one sale), with
// 32 callers per core, as a server under a rush has. The
// sub-benchmarks are sync mode, queue mode, and queue mode waiting for a
// replica (WAIT 1 on the admitting connection, ORDERS_QUEUE_MIN_REPLICAS=1).
//
//	REDIS_BENCH_URL=$REDIS_CLUSTER_URL go test -run '^$' -bench GateAdmit -benchtime 20000x ./internal/redis
func BenchmarkGateAdmit(b *testing.B) {
	url := os.Getenv("REDIS_BENCH_URL")
	if url == "" {
		b.Skip("set REDIS_BENCH_URL to a Redis (or Redis Cluster) of your own")
	}
	for _, tt := range []struct {
		name     string
		queue    bool
		replicas int
	}{
		{"sync", false, 0},
		{"queue", true, 0},
		{"queue-wait-replica", true, 1},
	} {
		b.Run(tt.name, func(b *testing.B) {
			prefix := newPrefix()
			ctx := context.Background()
			c, err := redis.New(ctx, url, redis.WithKeyPrefix(prefix), redis.WithReplicas(tt.replicas, time.Second))
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			g := redis.NewGate(c)
			sl := openSale()
			if err := g.Load(ctx, stateOf(sl, int32(b.N+1), nil)); err != nil {
				b.Fatal(err)
			}
			raw := benchRaw(b, url)
			defer raw.Close()
			calls0, usec0 := scriptStats(b, raw)
			b.SetParallelism(32) // 64 callers on 2 cores, as a server under a rush has
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					a := attempt(sl, newID())
					a.Queue, a.MaxQueued = tt.queue, 1<<40
					if d, _, err := g.Admit(ctx, a); err != nil || d != order.Admitted {
						b.Errorf("Admit = %v, %v", d, err)
						return
					}
				}
			})
			b.StopTimer()
			calls1, usec1 := scriptStats(b, raw)
			if n := calls1 - calls0; n > 0 {
				b.ReportMetric(float64(usec1-usec0)/float64(n), "redis-us/admit")
			}
			deletePrefixAt(b, raw, prefix)
		})
	}
}

func benchRaw(b *testing.B, url string) rueidis.Client {
	opt, err := rueidis.ParseURL(url)
	if err != nil {
		b.Fatal(err)
	}
	opt.DisableCache = true
	rc, err := rueidis.NewClient(opt)
	if err != nil {
		b.Fatal(err)
	}
	return rc
}

// scriptStats sums EVALSHA and EVAL calls and their microseconds over every
// master: during the benchmark, the admissions.
func scriptStats(b *testing.B, rc rueidis.Client) (calls, usec int64) {
	ctx := context.Background()
	for _, n := range rc.Nodes() {
		role, err := n.Do(ctx, n.B().Role().Build()).ToArray()
		if err != nil {
			b.Fatal(err)
		}
		if r, _ := role[0].ToString(); r != "master" {
			continue
		}
		s, err := n.Do(ctx, n.B().Info().Section("commandstats").Build()).ToString()
		if err != nil {
			b.Fatal(err)
		}
		for line := range strings.Lines(s) {
			line = strings.TrimSpace(line)
			if !strings.HasPrefix(line, "cmdstat_evalsha:") && !strings.HasPrefix(line, "cmdstat_eval:") {
				continue
			}
			_, fields, _ := strings.Cut(line, ":")
			for f := range strings.SplitSeq(fields, ",") {
				k, v, _ := strings.Cut(f, "=")
				n, _ := strconv.ParseInt(v, 10, 64)
				switch k {
				case "calls":
					calls += n
				case "usec":
					usec += n
				}
			}
		}
	}
	return calls, usec
}

func deletePrefixAt(b *testing.B, rc rueidis.Client, prefix string) {
	for _, k := range scanKeys(b, rc, prefix+":*") {
		rc.Do(context.Background(), rc.B().Del().Key(k).Build())
	}
}
