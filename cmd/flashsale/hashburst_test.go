package main

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/flashsale/flashsale/internal/postgres/pgtest"
	"github.com/flashsale/flashsale/internal/testenv"
)

// TestRegisterBurst is the sign-up flood of issue 10 against a real `flashsale
// serve` with default settings: 2,000 POST /v1/auth/register, 250 at a time,
// first from one client address, then each from a different one (the
// server trusts the loopback peer as a proxy, so X-Forwarded-For names the
// client, as it would behind a load balancer), while another client reads
// the sale status 40 times a second. Each register costs an argon2id hash
// of 19 MiB; unbounded, the burst took the server past 5 GB. The server's
// peak RSS must stay under 512 MiB, and the only 5xx allowed is 503 (hashing
// at capacity; it comes with Retry-After). The status read latencies are
// logged, not asserted.
func TestRegisterBurst(t *testing.T) {
	testenv.Long(t, "runs a real server under a sign-up flood")
	const burst, concurrency = 2000, 250
	bin := buildFlashsale(t)
	s := startServe(t, bin, map[string]string{
		"DATABASE_URL":    pgtest.NewDatabase(t),
		"REDIS_URL":       testRedisURL(t),
		"RL_DISABLED":     "false",
		"TRUSTED_PROXIES": "127.0.0.1",
	})
	product, _, _ := saleOpenNow(t, s.testServer, 10)
	client := &http.Client{
		Timeout:   time.Minute,
		Transport: &http.Transport{MaxIdleConnsPerHost: concurrency, MaxConnsPerHost: concurrency + 10},
	}
	post := func(body, xff string) (int, string, error) {
		req, err := http.NewRequest("POST", s.baseURL+"/v1/auth/register", strings.NewReader(body))
		if err != nil {
			return 0, "", err
		}
		req.Header.Set("X-Forwarded-For", xff)
		resp, err := client.Do(req)
		if err != nil {
			return 0, "", err
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Retry-After"), nil
	}

	for _, phase := range []struct {
		name string
		from func(i int) string
	}{
		{"one client", func(int) string { return "198.51.100.1" }},
		{"a client each", func(i int) string { return fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255) }},
	} {
		stopReads := make(chan struct{})
		readsDone := make(chan []time.Duration)
		go func() { readsDone <- readStatus(client, s.baseURL+"/v1/products/"+product+"/sale-status", stopReads) }()

		start := time.Now()
		var mu sync.Mutex
		codes := map[int]int{}
		var noRetryAfter, transport atomic.Int64
		var next atomic.Int64
		var wg sync.WaitGroup
		for range concurrency {
			wg.Go(func() {
				for {
					i := int(next.Add(1)) - 1
					if i >= burst {
						return
					}
					body := fmt.Sprintf(`{"email":"burst-%d-%d@example.com","password":"burst-password"}`, len(phase.name), i)
					code, retryAfter, err := post(body, phase.from(i))
					if err != nil {
						transport.Add(1)
						continue
					}
					if (code == 503 || code == 429) && retryAfter == "" {
						noRetryAfter.Add(1)
					}
					mu.Lock()
					codes[code]++
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		took := time.Since(start)
		close(stopReads)
		reads := <-readsDone
		t.Logf("%s: %d registers in %v: by status %v; sale-status reads meanwhile: %s",
			phase.name, burst, took.Round(time.Millisecond), codes, percentiles(reads))
		for code, n := range codes {
			if code >= 500 && code != 503 {
				t.Errorf("%s: %d registers answered %d, want no 5xx but 503", phase.name, n, code)
			}
		}
		if n := transport.Load(); n > 0 {
			t.Errorf("%s: %d registers failed in transport", phase.name, n)
		}
		if n := noRetryAfter.Load(); n > 0 {
			t.Errorf("%s: %d 429 or 503 answers without Retry-After", phase.name, n)
		}
	}
	hwm := procStatus(t, s.proc.cmd.Process.Pid, "VmHWM")
	t.Logf("server peak RSS (VmHWM): %d MiB", hwm>>20)
	if hwm >= 512<<20 {
		t.Errorf("server peak RSS = %d MiB, want under 512 MiB", hwm>>20)
	}
}

// readStatus GETs url 40 times a second from a client of its own until stop
// is closed, and returns the latencies of the answers.
func readStatus(client *http.Client, url string, stop <-chan struct{}) []time.Duration {
	var lat []time.Duration
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return lat
		case <-tick.C:
		}
		req, err := http.NewRequest("GET", url, nil)
		if err != nil {
			continue
		}
		req.Header.Set("X-Forwarded-For", "192.0.2.200")
		start := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			continue
		}
		resp.Body.Close()
		if resp.StatusCode == 200 {
			lat = append(lat, time.Since(start))
		}
	}
}

// percentiles describes latencies: count, p50, p99, max.
func percentiles(d []time.Duration) string {
	if len(d) == 0 {
		return "none answered 200"
	}
	d = slices.Clone(d)
	slices.Sort(d)
	at := func(q float64) time.Duration {
		return d[min(len(d)-1, int(q*float64(len(d))))].Round(10 * time.Microsecond)
	}
	return fmt.Sprintf("%d answered 200, p50 %v, p99 %v, max %v", len(d), at(0.5), at(0.99), d[len(d)-1].Round(10*time.Microsecond))
}
