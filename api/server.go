package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/hookline/hookline/api/console"
	"github.com/hookline/hookline/schemas"
)

// Server is the HTTP API. Build it with New and serve Handler.
type Server struct {
	cfg    Config
	deps   Deps
	log    *slog.Logger
	router *mux.Router
	// probesOnly: the process runs no api stage; it serves /healthz,
	// /readyz and /metrics alone (NewProbes).
	probesOnly bool
	// sweeps fail the waiting deliveries of disabled and deleted
	// webhooks; nil without Deps.Failures.
	sweeps *sweeper
	// sweepOwner, if set, picks the one process that sweeps after a
	// sender's disable.
	sweepOwner sweepOwner
	// keys keeps the answers to POSTs with an Idempotency-Key.
	keys *idempotency
	// published is the tenant and id of every event published in the
	// last Config.DedupeWindow, for publishEvents to leave out
	// repeats.
	published *seenIDs
}

// New builds the API. cfg gets its defaults applied; a nil logger discards.
func New(cfg Config, deps Deps, logger *slog.Logger) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if err := deps.validate(); err != nil {
		return nil, err
	}
	deps.setDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, deps: deps, log: logger, keys: newIdempotency(cfg.keyWindow, deps.Answers),
		published: newSeenIDs(publishedEntries, cfg.DedupeWindow, time.Now)}
	if deps.Failures != nil {
		s.sweeps = newSweeper(deps.Webhooks, deps.Deliveries, deps.Failures, logger, s.now)
		if w, ok := deps.Webhooks.(disableWatcher); ok {
			w.OnDisabled(s.disabledElsewhere)
		}
		s.sweepOwner, _ = deps.Replays.(sweepOwner)
	}
	s.router = s.routes()
	return s, nil
}

// Shutdown stops the API's background work: sweeps not started yet are
// dropped (the sender fails those deliveries as they come back), sweeps
// running may finish until ctx ends and are then cut short. Call it once
// the HTTP server has stopped taking requests, before closing Deps.
func (s *Server) Shutdown(ctx context.Context) error {
	if s.sweeps == nil {
		return nil
	}
	return s.sweeps.shutdown(ctx)
}

// disableWatcher is a Webhooks that tells of every disable it sees
// (subscriptions.Registry).
type disableWatcher interface {
	OnDisabled(func(schemas.Webhook))
}

// sweepOwner says which API process sweeps after a sender's disable
// (replay.Manager: the holder of the webhook id's partition of
// hookline.replays), so that each delivery is failed, and dead-lettered,
// by one process, not by every one.
type sweepOwner interface {
	Owns(key string) bool
}

// recentDisable is how old a disable the registry tells of may be for
// disabledElsewhere to sweep: the registry also tells of the disables it
// reads again from the topic's start, long since swept or come back.
const recentDisable = 10 * time.Minute

// disabledElsewhere sweeps for a webhook that Hookline itself disabled (a
// sender: 410 Gone, or failing for --disable-after; the change carries
// its reason): its deliveries waiting on a retry topic, maybe for hours,
// are failed webhook_disabled now, as the API's own disables do, not as
// each comes back. Every API process sees the change; the one that owns
// the webhook id's partition of hookline.replays sweeps (with no replay
// manager, every one: their failures of a delivery carry the same attempt
// number, which the store keeps once, but each writes a dead letter). A
// disable seen while ownership moves is left to the sender, which fails
// each delivery as it comes back.
func (s *Server) disabledElsewhere(wh schemas.Webhook) {
	if wh.DisabledReason == "" || wh.DisabledAt == nil || s.now().Sub(*wh.DisabledAt) > recentDisable {
		return // the API's own disable sweeps where it is made
	}
	if s.sweepOwner != nil && !s.sweepOwner.Owns(wh.ID) {
		return
	}
	s.failWaiting(wh, errWebhookDisabled, *wh.DisabledAt)
}

// failWaiting fails, in the background, the deliveries waiting on wh,
// which the API has just disabled or deleted (reason) durably at at.
func (s *Server) failWaiting(wh schemas.Webhook, reason string, at time.Time) {
	if s.sweeps == nil {
		return
	}
	s.sweeps.enqueue(sweep{tenant: wh.Tenant, webhookID: wh.ID, url: wh.URL, reason: reason, at: at})
}

// NewProbes builds the HTTP server of a process that runs no api stage:
// /healthz, /readyz (deps.Checks: the process's own dependencies) and
// /metrics (deps.Metrics), with the same authentication as the API; every
// other path is a 404 that says where the API is not.
func NewProbes(cfg Config, deps Deps, logger *slog.Logger) (*Server, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	for name, c := range deps.Checks {
		if name == "" || c == nil {
			return nil, errors.New("api: every readiness check needs a name and a function")
		}
	}
	deps.setDefaults()
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{cfg: cfg, deps: deps, log: logger, probesOnly: true, keys: newIdempotency(cfg.keyWindow, nil)}
	s.router = s.routes()
	return s, nil
}

// Handler serves every route, with the browser checks of the tokenless API,
// authentication, the body limit and panic recovery in front.
func (s *Server) Handler() http.Handler {
	return s.recoverer(s.browserSafe(s.limitBody(s.authenticate(s.idempotent(s.router)))))
}

// HTTPServer returns an http.Server for addr with the configured timeouts
// and Handler.
func (s *Server) HTTPServer(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           s.Handler(),
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		ReadTimeout:       s.cfg.ReadTimeout,
		WriteTimeout:      s.cfg.WriteTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

func (s *Server) routes() *mux.Router {
	r := mux.NewRouter()
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		msg := fmt.Sprintf("no route %s %s", r.Method, r.URL.Path)
		if s.probesOnly {
			msg += " (this process runs no api stage: it serves /healthz, /readyz and /metrics)"
		}
		writeError(w, &apiError{Status: http.StatusNotFound, Code: codeNotFound, Message: msg})
	})
	r.MethodNotAllowedHandler = http.HandlerFunc(s.methodNotAllowed)

	get := []string{http.MethodGet, http.MethodHead}
	r.HandleFunc("/healthz", s.healthz).Methods(get...)
	r.HandleFunc("/readyz", s.readyz).Methods(get...)
	switch {
	case s.cfg.MetricsAddr != "":
		r.HandleFunc("/metrics", func(w http.ResponseWriter, _ *http.Request) {
			writeError(w, &apiError{Status: http.StatusNotFound, Code: codeNotFound,
				Message: "metrics are served on " + s.cfg.MetricsAddr + " (--metrics-addr)"})
		}).Methods(get...)
	case s.deps.Metrics != nil:
		r.Handle("/metrics", s.deps.Metrics).Methods(get...)
	default:
		r.HandleFunc("/metrics", notImplemented("metrics")).Methods(get...)
	}
	if s.probesOnly {
		return r
	}
	r.HandleFunc(openAPIPath, serveOpenAPI).Methods(get...)
	console.Register(r)

	// Full paths rather than a /v1 subrouter: a gorilla/mux subrouter
	// answers a wrong method with 404, not 405.
	v1 := &prefixed{r: r, prefix: "/v1"}
	v1.HandleFunc("/webhooks", s.createWebhook).Methods(http.MethodPost)
	v1.HandleFunc("/webhooks", s.listWebhooks).Methods(get...)
	v1.HandleFunc("/webhooks/bulk", s.bulkWebhooks).Methods(http.MethodPost)
	v1.HandleFunc("/webhooks/{id}", s.getWebhook).Methods(get...)
	v1.HandleFunc("/webhooks/{id}", s.updateWebhook).Methods(http.MethodPatch)
	v1.HandleFunc("/webhooks/{id}", s.deleteWebhook).Methods(http.MethodDelete)
	v1.HandleFunc("/webhooks/{id}/rotate-secret", s.rotateSecret).Methods(http.MethodPost)
	v1.HandleFunc("/webhooks/{id}/test", s.testDelivery).Methods(http.MethodPost)
	v1.HandleFunc("/event-types", s.eventTypes).Methods(get...)
	v1.HandleFunc("/webhooks/{id}/deliveries", s.listDeliveries).Methods(get...)
	v1.HandleFunc("/deliveries/{id}", s.getDelivery).Methods(get...)
	v1.HandleFunc("/events", s.publishEvents).Methods(http.MethodPost)

	// Listed in SPEC §5 but not built yet: 501, so that a client can tell
	// "not yet" from "no such thing".
	v1.HandleFunc("/deliveries/{id}/redeliver", s.redeliver).Methods(http.MethodPost)
	v1.HandleFunc("/webhooks/{id}/redeliver-failed", s.redeliverFailed).Methods(http.MethodPost)
	s.replayRoutes(v1)
	v1.HandleFunc("/webhooks/{id}/stats", s.webhookStats).Methods(get...)
	v1.HandleFunc("/webhooks/{id}/stats/series", s.webhookStatsSeries).Methods(get...)
	return r
}

type prefixed struct {
	r      *mux.Router
	prefix string
}

func (p *prefixed) HandleFunc(path string, f http.HandlerFunc) *mux.Route {
	return p.r.HandleFunc(p.prefix+path, f)
}

func notImplemented(what string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		writeError(w, &apiError{Status: http.StatusNotImplemented, Code: codeNotImplemented,
			Message: what + " is not implemented yet in this version of Hookline"})
	}
}

// methodNotAllowed answers 405 with the Allow header RFC 9110 asks for.
func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request) {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete} {
		probe := r.Clone(r.Context())
		probe.Method = m
		var match mux.RouteMatch
		if s.router.Match(probe, &match) && match.MatchErr == nil {
			allowed = append(allowed, m)
		}
	}
	w.Header().Set("Allow", strings.Join(allowed, ", "))
	writeError(w, &apiError{Status: http.StatusMethodNotAllowed, Code: codeMethodNotAllowed,
		Message: fmt.Sprintf("%s is not allowed on %s", r.Method, r.URL.Path)})
}

type tenantKey struct{}

// tenantOf is the tenant authenticate put on the request.
func tenantOf(r *http.Request) string {
	t, _ := r.Context().Value(tenantKey{}).(string)
	return t
}

// publicPaths need no token: probes have none. /metrics needs the
// metrics token when tokens are set (metricsAuth): its series name every
// tenant's webhooks (serve's --metrics-addr serves it without one, on an
// address of its own, for Prometheus).
var publicPaths = map[string]bool{"/healthz": true, "/readyz": true, openAPIPath: true}

func (s *Server) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenant := schemas.DefaultTenant
		if len(s.cfg.Tokens) > 0 && r.URL.Path == "/metrics" && s.cfg.MetricsAddr == "" && s.deps.Metrics != nil {
			s.metricsAuth(next).ServeHTTP(w, r)
			return
		}
		if len(s.cfg.Tokens) > 0 && !publicPaths[r.URL.Path] && !console.Public(r.URL.Path) {
			var ok bool
			tenant, ok = s.tenantForToken(r.Header.Get("Authorization"))
			if !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="hookline"`)
				writeError(w, &apiError{Status: http.StatusUnauthorized, Code: codeUnauthorized,
					Message: "a valid Authorization: Bearer <token> header is required"})
				return
			}
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), tenantKey{}, tenant)))
	})
}

// metricsAuth lets only the metrics token read /metrics: its series name
// every tenant's webhooks. A tenant's token gets 403, no token 401.
func (s *Server) metricsAuth(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		header := r.Header.Get("Authorization")
		if s.cfg.MetricsToken != "" && bearerIs(header, s.cfg.MetricsToken) {
			next.ServeHTTP(w, r)
			return
		}
		if _, ok := s.tenantForToken(header); ok {
			msg := "/metrics names every tenant's webhooks: a tenant's token cannot read it; "
			if s.cfg.MetricsToken == "" {
				msg += "serve it with --metrics-addr on an internal address, or give a token of its own with --metrics-token"
			} else {
				msg += "use the --metrics-token"
			}
			writeError(w, &apiError{Status: http.StatusForbidden, Code: codeForbidden, Message: msg})
			return
		}
		w.Header().Set("WWW-Authenticate", `Bearer realm="hookline"`)
		writeError(w, &apiError{Status: http.StatusUnauthorized, Code: codeUnauthorized,
			Message: "a valid Authorization: Bearer <token> header is required: the --metrics-token"})
	})
}

// bearerIs reports, in constant time, whether an Authorization header is
// the bearer token want.
func bearerIs(header, want string) bool {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	return ok && strings.EqualFold(scheme, "Bearer") &&
		subtle.ConstantTimeCompare([]byte(strings.TrimSpace(token)), []byte(want)) == 1
}

// tenantForToken compares against every token in constant time, so that
// the answer's timing does not reveal how much of a token was right.
func (s *Server) tenantForToken(header string) (string, bool) {
	scheme, token, ok := strings.Cut(strings.TrimSpace(header), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	found := ""
	for t, tenant := range s.cfg.Tokens {
		if subtle.ConstantTimeCompare([]byte(t), []byte(token)) == 1 {
			found = tenant
		}
	}
	return found, found != ""
}

func (s *Server) limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > s.cfg.MaxBodyBytes {
			writeError(w, &apiError{Status: http.StatusRequestEntityTooLarge, Code: codeTooLarge,
				Message: fmt.Sprintf("the request body is larger than %d bytes", s.cfg.MaxBodyBytes)})
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

// recoverer turns a panic into a logged 500, so that one bad request does
// not take the process down.
func (s *Server) recoverer(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler {
				panic(v)
			}
			s.log.Error("api: panic in handler", "method", r.Method, "path", r.URL.Path, "panic", fmt.Sprint(v))
			writeError(w, &apiError{Status: http.StatusInternalServerError, Code: codeInternal,
				Message: "internal error"})
		}()
		next.ServeHTTP(w, r)
	})
}

// dependencyFailed answers 503 for a failing dependency and logs the cause;
// the client gets a generic message, never the dependency's error.
func (s *Server) dependencyFailed(w http.ResponseWriter, r *http.Request, what string, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		s.log.Info("api: client went away", "method", r.Method, "path", r.URL.Path, "during", what)
	} else {
		s.log.Error("api: dependency failed", "method", r.Method, "path", r.URL.Path, "during", what, "err", err)
	}
	writeError(w, &apiError{Status: http.StatusServiceUnavailable, Code: codeUnavailable,
		Message: "a dependency of Hookline is unavailable; try again later"})
}

func (s *Server) now() time.Time { return s.deps.Now().UTC() }

// healthz is liveness: the process answers.
func (s *Server) healthz(w http.ResponseWriter, r *http.Request) {
	body := map[string]string{"status": "ok"}
	if s.cfg.Version != "" {
		body["version"] = s.cfg.Version
	}
	writeJSON(w, http.StatusOK, body)
}

type readyBody struct {
	Status string            `json:"status,omitempty"`
	Error  *apiError         `json:"error,omitempty"`
	Checks map[string]string `json:"checks"`
}

// readyz runs every check concurrently, each bounded by CheckTimeout; a
// check that ignores its context is reported as failing when the time is up
// rather than holding the probe. The answer names failing checks but not
// their errors, which may carry addresses or credentials; those are logged.
func (s *Server) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), s.cfg.CheckTimeout)
	defer cancel()
	type result struct {
		name string
		err  error
	}
	done := make(chan result, len(s.deps.Checks)) // buffered: a late check never blocks
	for name, check := range s.deps.Checks {
		go func() {
			// A panicking check is a failing one, not a crashed process.
			defer func() {
				if v := recover(); v != nil {
					done <- result{name, fmt.Errorf("check panicked: %v", v)}
				}
			}()
			done <- result{name, check(ctx)}
		}()
	}
	results := make(map[string]string, len(s.deps.Checks))
	var shown []string // the errors checks let /readyz show
	for name := range s.deps.Checks {
		results[name] = "timed_out"
	}
wait:
	for range s.deps.Checks {
		select {
		case res := <-done:
			if res.err != nil {
				s.log.Warn("api: readiness check failed", "check", res.name, "err", res.err)
				results[res.name] = "failing"
				if sh := (Shown{}); errors.As(res.err, &sh) {
					shown = append(shown, res.name+": "+sh.Error())
				}
				continue
			}
			results[res.name] = "ok"
		case <-ctx.Done():
			break wait
		}
	}
	var failing []string
	for name, state := range results {
		if state == "timed_out" {
			s.log.Warn("api: readiness check timed out", "check", name, "timeout", s.cfg.CheckTimeout)
		}
		if state != "ok" {
			failing = append(failing, name)
		}
	}
	if len(failing) == 0 {
		writeJSON(w, http.StatusOK, readyBody{Status: "ready", Checks: results})
		return
	}
	sort.Strings(failing)
	sort.Strings(shown)
	msg := "not ready: " + strings.Join(failing, ", ") + " failing"
	if len(shown) > 0 {
		msg += " (" + strings.Join(shown, "; ") + ")"
	}
	writeJSON(w, http.StatusServiceUnavailable, readyBody{Checks: results, Error: &apiError{
		Status: http.StatusServiceUnavailable, Code: codeNotReady, Message: msg}})
}
