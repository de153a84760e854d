package main

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"
)

// login POSTs a login for email from the client address xff (the test
// server trusts the loopback peer as a proxy).
func login(t *testing.T, s *testServer, xff, email, password string) httpResult {
	t.Helper()
	req, err := http.NewRequest("POST", s.baseURL+"/v1/auth/login",
		strings.NewReader(fmt.Sprintf(`{"email":%q,"password":%q}`, email, password)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Forwarded-For", xff)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return httpResult{code: resp.StatusCode, header: resp.Header}
}

// TestAuthRateLimits: with the default limits, sign-ins and sign-ups from
// one address get their own, stricter bucket (429 past it, while other
// calls from that address still pass), and wrong passwords for one account
// back off, from whatever address they come and for the right password
// too, until the delay has passed; a success starts the count over.
func TestAuthRateLimits(t *testing.T) {
	s := startServer(t, "ORDER_MODE=sync", "RL_DISABLED=false", "TRUSTED_PROXIES=127.0.0.1")
	// One address, 100 wrong-password sign-ins to as many accounts.
	start := time.Now()
	codes := map[int]int{}
	for i := range 100 {
		r := login(t, s, "198.51.100.1", fmt.Sprintf("nobody%d@example.com", i), "wrong-password")
		codes[r.code]++
		if r.code == 429 && r.header.Get("Retry-After") == "" {
			t.Fatalf("429 without Retry-After")
		}
	}
	allowed := 20 + int(time.Since(start).Seconds()) + 2
	if codes[401] > allowed || codes[401]+codes[429] != 100 {
		t.Errorf("100 wrong-password sign-ins from one address: %v; want at most %d 401s and the rest 429", codes, allowed)
	}
	if code := getWith(t, s.baseURL+"/v1/flash-sales", http.Header{"X-Forwarded-For": {"198.51.100.1"}}); code != 200 {
		t.Errorf("another call from that address = %d, want 200 (the sign-in bucket is its own)", code)
	}

	// One account, wrong passwords from a new address each time: five go
	// through; past them, each one that goes through closes the account
	// for a delay (1 s, then 2 s, ...) and those meanwhile get 429.
	const email, password = "victim@example.com", "right-password"
	if r := httpRaw(t, "POST", s.baseURL+"/v1/auth/register", "", map[string]string{"email": email, "password": password}); r.code != 200 {
		t.Fatalf("register = %d %v", r.code, r.body)
	}
	for i := range 5 {
		if r := login(t, s, fmt.Sprintf("203.0.113.%d", i+1), email, "wrong-password"); r.code != 401 {
			t.Fatalf("wrong password %d = %d, want 401", i+1, r.code)
		}
	}
	backedOff := false
	for i := range 6 { // a slow hash may outlast a delay; the next one is twice as long
		if r := login(t, s, fmt.Sprintf("203.0.113.%d", 10+i), email, "wrong-password"); r.code == 429 {
			backedOff = true
			break
		} else if r.code != 401 {
			t.Fatalf("wrong password = %d, want 401 or 429", r.code)
		}
	}
	if !backedOff {
		t.Fatal("wrong passwords past the free five never got 429")
	}
	r := login(t, s, "203.0.113.50", email, password)
	if r.code != 429 || r.header.Get("Retry-After") == "" {
		t.Fatalf("right password while the account backs off = %d (Retry-After %q), want 429 with Retry-After", r.code, r.header.Get("Retry-After"))
	}
	wait, _ := strconv.Atoi(r.header.Get("Retry-After"))
	time.Sleep(time.Duration(wait) * time.Second)
	if r := login(t, s, "203.0.113.51", email, password); r.code != 200 {
		t.Fatalf("right password after Retry-After = %d, want 200", r.code)
	}
	for i := range 5 {
		if r := login(t, s, fmt.Sprintf("203.0.113.%d", 60+i), email, "wrong-password"); r.code != 401 {
			t.Fatalf("wrong password %d after a success = %d, want 401 (count started over)", i+1, r.code)
		}
	}
}
