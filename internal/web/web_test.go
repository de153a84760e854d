package web

import (
	"io"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func TestHandler(t *testing.T) {
	tests := []struct {
		method, path string
		wantCode     int
		wantType     string
		wantBody     string
	}{
		{"GET", "/", 200, "text/html", `<script src="app.js"`},
		{"HEAD", "/", 200, "text/html", ""},
		{"GET", "/app.js", 200, "text/javascript", "serverNow"},
		{"GET", "/style.css", 200, "text/css", ":root"},
		{"GET", "/nothing-here", 404, "", ""},
		{"POST", "/", 405, "", ""},
	}
	h := Handler()
	for _, tt := range tests {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(tt.method, tt.path, nil))
		res := rec.Result()
		body, _ := io.ReadAll(res.Body)
		if res.StatusCode != tt.wantCode {
			t.Errorf("%s %s = %d, want %d", tt.method, tt.path, res.StatusCode, tt.wantCode)
		}
		if got := res.Header.Get("Content-Type"); !strings.HasPrefix(got, tt.wantType) {
			t.Errorf("%s %s Content-Type = %q, want %q", tt.method, tt.path, got, tt.wantType)
		}
		if !strings.Contains(string(body), tt.wantBody) {
			t.Errorf("%s %s body lacks %q", tt.method, tt.path, tt.wantBody)
		}
		if tt.wantCode == 200 && !strings.Contains(res.Header.Get("Content-Security-Policy"), "script-src 'self'") {
			t.Errorf("%s %s CSP = %q", tt.method, tt.path, res.Header.Get("Content-Security-Policy"))
		}
	}
}

// TestNoThirdPartyAssets: the page loads nothing from another origin.
func TestNoThirdPartyAssets(t *testing.T) {
	external := regexp.MustCompile(`(?i)(src|href)\s*=\s*["']?(https?:)?//`)
	for _, name := range []string{"static/index.html", "static/app.js", "static/style.css"} {
		raw, err := static.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if m := external.Find(raw); m != nil {
			t.Errorf("%s loads from another origin: %q", name, m)
		}
		if strings.Contains(string(raw), "@import") {
			t.Errorf("%s imports a stylesheet", name)
		}
	}
}
