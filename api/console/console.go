package console

import (
	"embed"
	"io/fs"
	"net/http"
	"net/url"
	"regexp"

	"github.com/gorilla/mux"
)

// static holds the console: one HTML shell, its script and its style.
//
//go:embed static
var static embed.FS

// Pages are the console's addresses (SPEC §5): each serves the shell, and
// the script renders the page from the address, so every page can be
// bookmarked and shared.
var Pages = []string{"/", "/webhooks/new", "/webhooks/{id}", "/webhooks/{id}/edit", "/deliveries/{id}", "/replays"}

// AssetPrefix is where the script and the style are served.
const AssetPrefix = "/console/"

// pages matches Pages; assets the console's files. They are served
// without a token: the shell and its assets hold no data (the script asks
// the API, with the token).
var (
	pages  = pageRouter()
	assets = regexp.MustCompile(`^` + AssetPrefix + `[a-z]+\.(js|css|svg)$`)
)

func pageRouter() *mux.Router {
	r := mux.NewRouter()
	for _, p := range Pages {
		r.Path(p)
	}
	return r
}

// Public reports whether path is one of the console's, served without a
// token.
func Public(path string) bool {
	var m mux.RouteMatch
	return assets.MatchString(path) || pages.Match(&http.Request{Method: http.MethodGet, URL: &url.URL{Path: path}}, &m)
}

// security is the console's Content-Security-Policy: nothing but its own
// files and the API on the same origin; no inline script, no frames.
const security = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

// Register adds the console's routes to r.
func Register(r *mux.Router) {
	files, err := fs.Sub(static, "static")
	if err != nil {
		panic(err) // the embedded tree is part of the build
	}
	shell, err := fs.ReadFile(files, "index.html")
	if err != nil {
		panic(err)
	}
	page := func(w http.ResponseWriter, _ *http.Request) {
		headers(w)
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(shell)
	}
	for _, p := range Pages {
		r.HandleFunc(p, page).Methods(http.MethodGet, http.MethodHead)
	}
	assets := http.StripPrefix(AssetPrefix, http.FileServer(http.FS(files)))
	r.PathPrefix(AssetPrefix).Handler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		headers(w)
		assets.ServeHTTP(w, r)
	})).Methods(http.MethodGet, http.MethodHead)
}

func headers(w http.ResponseWriter) {
	w.Header().Set("Content-Security-Policy", security)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Referrer-Policy", "same-origin")
	// The files change with the binary: always ask again (they are small).
	w.Header().Set("Cache-Control", "no-cache")
}
