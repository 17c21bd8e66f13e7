package api

import (
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
)

// browserSafe guards the tokenless API (a local one: serve listens on
// loopback only without --api-tokens) from the web pages its user visits.
// Every request must name a loopback host (a DNS name rebound to 127.0.0.1
// is not one: 421, so no page can read deliveries through it). A request
// that changes state must come from no page or from the API's own (an
// Origin of another site: 403), and carry its body as application/json
// (415: a form or a text/plain post, which a page sends without asking
// first, is not one). With tokens none of this applies: a bearer token is
// never sent by a browser on its own.
func (s *Server) browserSafe(next http.Handler) http.Handler {
	if len(s.cfg.Tokens) > 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !loopbackHost(r.Host) {
			writeError(w, &apiError{Status: http.StatusMisdirectedRequest, Code: codeMisdirected,
				Message: "host " + r.Host + " is not this API's: without --api-tokens it answers only to localhost or a loopback address"})
			return
		}
		if changesState(r.Method) {
			if origin := r.Header.Get("Origin"); origin != "" && !sameOrigin(origin, r.Host) {
				writeError(w, &apiError{Status: http.StatusForbidden, Code: codeForbiddenOrigin,
					Message: "a request from the page at " + origin + " may not change anything here: without --api-tokens only the console and clients outside a browser may"})
				return
			}
			if !jsonBody(r) {
				writeError(w, &apiError{Status: http.StatusUnsupportedMediaType, Code: codeUnsupportedMedia,
					Message: "a request with a body must send it as Content-Type: application/json"})
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

func changesState(method string) bool {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodOptions:
		return false
	}
	return true
}

// loopbackHost reports whether a Host header names this machine's
// loopback: localhost (and names under it, RFC 6761) or a loopback IP.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.ToLower(strings.Trim(host, "[]")), ".")
	if host == "localhost" || strings.HasSuffix(host, ".localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// sameOrigin reports whether an Origin header is the API's own address.
func sameOrigin(origin, host string) bool {
	u, err := url.Parse(origin)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") {
		return false // "null" (a sandboxed frame, a file) included
	}
	return strings.EqualFold(u.Host, host)
}

// jsonBody reports whether a request's body, if it has one, is declared
// JSON. A request with no body and no Content-Type is fine (a browser's
// cross-site one carries an Origin).
func jsonBody(r *http.Request) bool {
	ct := r.Header.Get("Content-Type")
	if ct == "" {
		return r.ContentLength == 0
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && (mt == "application/json" || strings.HasSuffix(mt, "+json"))
}
