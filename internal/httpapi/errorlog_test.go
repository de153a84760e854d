package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/flashsale/flashsale/internal/testenv"
)

// records counts the JSON log lines by level and message (net/http's
// without the client's address).
func records(t *testing.T, l *testenv.Buffer) map[string]int {
	t.Helper()
	n := map[string]int{}
	for line := range strings.Lines(l.String()) {
		var r struct{ Level, Msg string }
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("log line %q: %v", line, err)
		}
		msg := r.Msg
		for _, prefix := range []string{"http: TLS handshake error", "http: panic serving"} {
			if strings.HasPrefix(msg, prefix) {
				msg = prefix // the rest names the client
			}
		}
		n[r.Level+" "+msg]++
	}
	return n
}

// TestErrorLog: through a real TLS server, connections closed before their
// handshake (a load balancer's TCP check, a scanner) are logged at debug
// within the budget, not at all at info; a panic in a handler is logged
// at error every time.
func TestErrorLog(t *testing.T) {
	for _, level := range []slog.Level{slog.LevelInfo, slog.LevelDebug} {
		t.Run(level.String(), func(t *testing.T) {
			var out testenv.Buffer
			const budget, probes, panics = 3, 40, 5
			ts := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
				panic("boom")
			}))
			ts.Config.ErrorLog = ErrorLog(slog.New(slog.NewJSONHandler(&out, &slog.HandlerOptions{Level: level})), budget)
			ts.StartTLS()
			defer ts.Close()

			start := time.Now()
			for range probes {
				c, err := net.Dial("tcp", ts.Listener.Addr().String())
				if err != nil {
					t.Fatal(err)
				}
				c.Close()
			}
			client := ts.Client()
			for range panics {
				if resp, err := client.Get(ts.URL); err == nil {
					resp.Body.Close()
				}
			}
			ts.Close() // waits for the connections' goroutines, and so their lines
			seconds := int(time.Since(start).Seconds()) + 1

			got := records(t, &out)
			if n := got["ERROR http: panic serving"]; n != panics {
				t.Errorf("%d panics logged at error, want %d: %v", n, panics, got)
			}
			handshakes := got["DEBUG http: TLS handshake error"]
			switch {
			case level == slog.LevelInfo && handshakes != 0:
				t.Errorf("at info, %d failed handshakes logged: %v", handshakes, got)
			case level == slog.LevelDebug && (handshakes == 0 || handshakes > budget*seconds):
				t.Errorf("at debug, %d failed handshakes logged in %d s, want 1..%d: %v", handshakes, seconds, budget*seconds, got)
			}
		})
	}
}

type failingCheck struct{}

func (failingCheck) Ping(context.Context) error { return errors.New("connection refused") }

// TestReadyzLogBounded: /readyz called again and again while a dependency
// is down logs "not ready" within the budget.
func TestReadyzLogBounded(t *testing.T) {
	var out testenv.Buffer
	const budget, calls = 2, 200
	h, err := New(t.Context(), Deps{
		Conn: nil, Gatherer: prometheus.NewRegistry(), Ready: map[string]Checker{"postgres": failingCheck{}},
		Log: slog.New(slog.NewJSONHandler(&out, nil)), LogPerSecond: budget,
	})
	if err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for range calls {
		w := httptest.NewRecorder()
		h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/readyz", nil))
		if w.Code != http.StatusServiceUnavailable {
			t.Fatalf("/readyz = %d, want 503", w.Code)
		}
	}
	seconds := int(time.Since(start).Seconds()) + 1
	if n := records(t, &out)["WARN not ready"]; n == 0 || n > budget*seconds {
		t.Errorf("%d \"not ready\" lines for %d calls in %d s, want 1..%d", n, calls, seconds, budget*seconds)
	}
}
