package app_test

import (
	"crypto/rand"
	"net/http"
	"testing"
	"time"
)

// TestIPLimitShared: two serve processes on one Redis share the per-IP
// bucket: once one has let an address use it up, the other, after its next
// report, refuses the address too (429 with Retry-After), while another
// address still passes. Each would allow the whole bucket alone.
func TestIPLimitShared(t *testing.T) {
	env := map[string]string{
		"ORDER_MODE":       "sync",
		"RL_DISABLED":      "false",
		"RL_IP_CAPACITY":   "5",
		"RL_IP_REFILL":     "1",
		"RL_IP_SYNC_MS":    "20",
		"TRUSTED_PROXIES":  "127.0.0.1",
		"REDIS_KEY_PREFIX": "fsapp-" + rand.Text()[:12], // both processes'
	}
	a, b := start(t, testConfig(t, env)), start(t, testConfig(t, env))
	list := func(r *running, ip string) *http.Response {
		t.Helper()
		req, err := http.NewRequest("GET", r.baseURL+"/v1/flash-sales", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Forwarded-For", ip)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}
	const ip = "198.51.100.30"
	for i := range 5 {
		if resp := list(a, ip); resp.StatusCode != http.StatusOK {
			t.Fatalf("process a: call %d of 5 = %d, want 200", i+1, resp.StatusCode)
		}
	}
	time.Sleep(100 * time.Millisecond) // a reports
	// b has not let the address through yet, so it has nothing to report
	// and has heard nothing: its first call passes, and its report of it
	// hears that the shared bucket is empty.
	if resp := list(b, ip); resp.StatusCode != http.StatusOK {
		t.Fatalf("process b: first call = %d, want 200", resp.StatusCode)
	}
	time.Sleep(100 * time.Millisecond) // b reports
	resp := list(b, ip)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("process b, after its report: call = %d (Retry-After %q), want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if resp := list(b, "198.51.100.31"); resp.StatusCode != http.StatusOK {
		t.Errorf("process b: another address = %d, want 200", resp.StatusCode)
	}
}
