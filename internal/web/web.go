// Package web is the page for people: a small single-page app (plain HTML,
// CSS and JavaScript, no build step) embedded into the binary. It talks only
// to the public REST API under /v1, the same one curl and other clients use.
package web

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed static
var static embed.FS

// contentSecurityPolicy allows nothing from other origins: the page loads
// its own script and style and calls only its own API.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; " +
	"connect-src 'self'; img-src 'self' data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// Handler serves the embedded page: index.html at /, and app.js and
// style.css beside it. Anything else is 404; methods other than GET and
// HEAD are 405, so it can sit at "/" of a mux for every method.
func Handler() http.Handler {
	sub, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is fixed at build time
	}
	files := http.FileServerFS(sub)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		// The files change with the binary; revalidate instead of caching stale ones.
		h.Set("Cache-Control", "no-cache")
		files.ServeHTTP(w, r)
	})
}
