package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"
	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/hookline/hookline/api/console"
	"github.com/hookline/hookline/projections"
	"github.com/hookline/hookline/schemas"
)

// notImplementedExt marks the operations that answer 501 until they are built.
const notImplementedExt = "x-hookline-not-implemented"

// spec is schemas.OpenAPI, loaded, validated and made strict for testing.
type spec struct {
	doc    *openapi3.T
	routes routers.Router
}

func loadSpec(t *testing.T) spec {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(schemas.OpenAPI)
	if err != nil {
		t.Fatalf("schemas/openapi.yaml does not load: %v", err)
	}
	if err := doc.Validate(loader.Context,
		openapi3.EnableExamplesValidation(),
		openapi3.EnableSchemaFormatValidation(),
		openapi3.EnableSchemaPatternValidation(),
	); err != nil {
		t.Fatalf("schemas/openapi.yaml is not a valid OpenAPI document: %v", err)
	}
	// The published document leaves answers open, so that clients accept
	// fields added later. Here every object is closed, so that a field a
	// handler answers with but the document lacks fails a test.
	seen := map[*openapi3.Schema]bool{}
	for _, s := range doc.Components.Schemas {
		closeObjects(s, seen)
	}
	for _, item := range doc.Paths.Map() {
		for _, op := range item.Operations() {
			for _, resp := range op.Responses.Map() {
				for _, mt := range resp.Value.Content {
					closeObjects(mt.Schema, seen)
				}
			}
		}
	}
	routes, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatalf("routing the document: %v", err)
	}
	return spec{doc: doc, routes: routes}
}

// closeObjects forbids properties an object schema does not list, unless it
// says what it allows. allOf parts without properties (WebhookCreate's
// required list) are left alone, so compositions keep working.
func closeObjects(ref *openapi3.SchemaRef, seen map[*openapi3.Schema]bool) {
	if ref == nil || ref.Value == nil || seen[ref.Value] {
		return
	}
	s := ref.Value
	seen[s] = true
	if s.Type.Is(openapi3.TypeObject) && len(s.Properties) > 0 &&
		s.AdditionalProperties.Has == nil && s.AdditionalProperties.Schema == nil {
		s.AdditionalProperties.Has = openapi3.Ptr(false)
	}
	for _, p := range s.Properties {
		closeObjects(p, seen)
	}
	closeObjects(s.Items, seen)
	closeObjects(s.AdditionalProperties.Schema, seen)
	for _, list := range [][]*openapi3.SchemaRef{s.AllOf, s.OneOf, s.AnyOf} {
		for _, p := range list {
			closeObjects(p, seen)
		}
	}
}

// operation is one documented method of one path.
type operation struct {
	method, path string
	op           *openapi3.Operation
}

func (s spec) operations() []operation {
	var out []operation
	for _, path := range slices.Sorted(maps.Keys(s.doc.Paths.Map())) {
		ops := s.doc.Paths.Value(path).Operations()
		for _, method := range slices.Sorted(maps.Keys(ops)) {
			out = append(out, operation{method: method, path: path, op: ops[method]})
		}
	}
	return out
}

func (o operation) notImplemented() bool {
	v, _ := o.op.Extensions[notImplementedExt].(bool)
	return v
}

// public reports an operation that overrides the bearer requirement with
// `security: []`.
func (o operation) public() bool {
	return o.op.Security != nil && len(*o.op.Security) == 0
}

// examples are the request body examples of the operation, by name.
func (o operation) examples(t *testing.T) map[string]any {
	t.Helper()
	if o.op.RequestBody == nil {
		return nil
	}
	mt := o.op.RequestBody.Value.Content.Get("application/json")
	if mt == nil {
		t.Fatalf("%s %s: the request body is not application/json", o.method, o.path)
	}
	out := map[string]any{}
	if mt.Example != nil {
		out["example"] = mt.Example
	}
	for name, ex := range mt.Examples {
		out[name] = ex.Value.Value
	}
	if len(out) == 0 {
		t.Errorf("%s %s: the request body has no example", o.method, o.path)
	}
	return out
}

const specToken = "tok-spec"

// specMetricsToken reads /metrics (a tenant's token may not).
const specMetricsToken = "tok-spec-metrics"

// specFixture is an API over the fakes with one webhook, created through the
// API, and one delivery of it with two attempts.
type specFixture struct {
	srv       *Server
	handler   http.Handler
	hooks     *fakeWebhooks
	events    *fakeEvents
	dels      *fakeDeliveries
	replays   *fakeReplays
	notReady  atomic.Bool
	webhookID string
}

const (
	specDeliveryID = "del-1"
	specReplayID   = "rep-1"
	// specExampleWebhookID is the webhook the replay examples name.
	specExampleWebhookID = "0193a5c6-7e1f-7cc0-9d2e-2f4a5b6c7d8e"
)

// listWithoutDetail answers lists as a real store does: without request
// and attempts, which only GetDelivery sets.
type listWithoutDetail struct{ *fakeDeliveries }

func (l listWithoutDetail) ListDeliveries(ctx context.Context, q projections.DeliveryQuery) (projections.DeliveryPage, error) {
	page, err := l.fakeDeliveries.ListDeliveries(ctx, q)
	for i := range page.Deliveries {
		page.Deliveries[i].Request, page.Deliveries[i].Attempts = nil, nil
	}
	return page, err
}

func (f *fakeDeliveries) setErr(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func newSpecFixture(t *testing.T) *specFixture {
	t.Helper()
	f := &specFixture{hooks: newFakeWebhooks(), events: &fakeEvents{}, dels: newFakeDeliveries(), replays: newFakeReplays()}
	n := atomic.Int64{}
	srv, err := New(Config{Tokens: map[string]string{specToken: "acme"}, MetricsToken: specMetricsToken, Version: "v1.2.3"}, Deps{
		Webhooks: f.hooks, Events: f.events, Deliveries: listWithoutDetail{f.dels}, Jobs: &fakeJobs{},
		Breakers: fakeBreakers{}, Replays: f.replays,
		Metrics: promhttp.HandlerFor(prometheus.NewPedanticRegistry(), promhttp.HandlerOpts{}),
		Checks: map[string]Check{"store": func(context.Context) error {
			if f.notReady.Load() {
				return errors.New("store down")
			}
			return nil
		}},
		NewID: func() string { return fmt.Sprintf("id-%04d", n.Add(1)) },
	}, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	f.srv, f.handler = srv, srv.Handler()

	rec := f.serve(newRequest(http.MethodPost, "/v1/webhooks", specToken, []byte(validWebhook)))
	mustStatus(t, rec, http.StatusCreated)
	f.webhookID = decodeBody[schemas.PublicWebhook](t, rec).ID
	f.hooks.byID[specExampleWebhookID] = schemas.Webhook{ID: specExampleWebhookID, Tenant: "acme", Name: "example",
		URL: "https://example.com/hook", Enabled: true, ContentType: schemas.ContentTypeJSON, Events: []string{"*"},
		Retries: schemas.DefaultRetries, TimeoutMS: schemas.DefaultTimeoutMS, CreatedAt: t0, UpdatedAt: t0, Version: 1}
	f.replays.add(schemas.Replay{
		ID: specReplayID, Tenant: "acme", WebhookIDs: []string{specExampleWebhookID},
		From: schemas.ReplayPosition{Time: &t0}, State: schemas.ReplayRunning, Scanned: 1200, Matched: 40, Enqueued: 40,
		Partitions: []schemas.ReplayPartition{{Partition: 0, Start: 0, End: 5000, Next: 1200}},
		CreatedAt:  t0, UpdatedAt: t0.Add(time.Second), Version: 3,
	})
	f.dels.add("acme", projections.Delivery{
		ID: specDeliveryID, WebhookID: f.webhookID, EventIDs: []string{"evt-1"},
		EventType: "ticket.created", State: schemas.StateSucceeded, AttemptCount: 2,
		LastStatusCode: 200, CreatedAt: t0, UpdatedAt: t0.Add(7 * time.Second),
		URL: "https://example.com/hook",
		Request: &projections.Request{
			Headers: map[string]string{"Content-Type": "application/json", "webhook-signature": "v1,***"},
			Body:    `{"id":"del-1"}`,
		},
		Attempts: []projections.AttemptView{
			{N: 1, At: t0.Add(time.Second), StatusCode: 503, DurationMS: 120, Error: "endpoint answered 503", ResponseBody: "busy"},
			{N: 2, At: t0.Add(7 * time.Second), StatusCode: 200, DurationMS: 85,
				ResponseHeaders: map[string]string{"Content-Type": "text/plain"}, ResponseBody: "ok"},
		},
	})
	return f
}

// path fills a documented path's {id} with an object the fixture holds.
func (f *specFixture) path(template string) string {
	id := specReplayID
	switch {
	case strings.HasPrefix(template, "/v1/webhooks/"):
		id = f.webhookID
	case strings.HasPrefix(template, "/v1/deliveries/"):
		id = specDeliveryID
	}
	return strings.ReplaceAll(template, "{id}", id)
}

func (f *specFixture) serve(req *http.Request) *httptest.ResponseRecorder {
	rec := httptest.NewRecorder()
	f.handler.ServeHTTP(rec, req)
	return rec
}

// newRequest builds a request; token "" sends no Authorization header.
func newRequest(method, target, token string, body []byte) *http.Request {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req := httptest.NewRequest(method, target, rd)
	req.Host = "127.0.0.1:8080" // the tokenless API answers to loopback only
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	return req
}

// requireBearer stands in for the server's check of bearerAuth: the request
// carries a bearer token.
func requireBearer(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if in.SecuritySchemeName != "bearerAuth" {
		return fmt.Errorf("unknown security scheme %q", in.SecuritySchemeName)
	}
	if !strings.HasPrefix(in.RequestValidationInput.Request.Header.Get("Authorization"), "Bearer ") {
		return errors.New("no bearer token")
	}
	return nil
}

// validateRequest checks a request against the document.
func (s spec) validateRequest(t *testing.T, req *http.Request) {
	t.Helper()
	route, params, err := s.routes.FindRoute(req)
	if err != nil {
		t.Fatalf("%s %s is not in the document: %v", req.Method, req.URL, err)
	}
	err = openapi3filter.ValidateRequest(context.Background(), &openapi3filter.RequestValidationInput{
		Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: requireBearer, SkipSettingDefaults: true, MultiError: true},
	})
	if err != nil {
		t.Errorf("%s %s does not follow the document: %v", req.Method, req.URL, err)
	}
}

// validateResponse checks an answer against the document: its status must
// be documented for the operation, and its headers and body must follow it.
func (s spec) validateResponse(t *testing.T, req *http.Request, rec *httptest.ResponseRecorder) {
	t.Helper()
	route, params, err := s.routes.FindRoute(req)
	if err != nil {
		t.Fatalf("%s %s is not in the document: %v", req.Method, req.URL, err)
	}
	err = openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 rec.Code,
		Header:                 rec.Header(),
		Body:                   io.NopCloser(bytes.NewReader(rec.Body.Bytes())),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	})
	if err != nil {
		t.Errorf("%s %s answered %d, which the document does not describe: %v\nbody: %s",
			req.Method, req.URL, rec.Code, err, rec.Body.String())
	}
}

func TestOpenAPIDocumentDescribesEveryRouteOfTheRouter(t *testing.T) {
	s := loadSpec(t)
	f := newSpecFixture(t)

	registered := map[string]bool{}
	err := f.srv.router.Walk(func(route *mux.Route, _ *mux.Router, _ []*mux.Route) error {
		path, err := route.GetPathTemplate()
		if err != nil {
			return err
		}
		if slices.Contains(console.Pages, path) || path == console.AssetPrefix {
			return nil // the console's HTML and files, not the API
		}
		methods, err := route.GetMethods()
		if err != nil {
			return fmt.Errorf("route %s has no methods: %w", path, err)
		}
		for _, m := range methods {
			// HEAD is answered wherever GET is (RFC 9110 §9.3.2); the
			// document describes the GET.
			if m == http.MethodHead {
				if !slices.Contains(methods, http.MethodGet) {
					t.Errorf("route %s serves HEAD without GET", path)
				}
				continue
			}
			registered[m+" "+path] = true
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walking the router: %v", err)
	}
	documented := map[string]bool{}
	for _, o := range s.operations() {
		documented[o.method+" "+o.path] = true
	}
	if len(registered) < 17 {
		t.Fatalf("the walk found only %d routes: %v", len(registered), registered)
	}
	for _, r := range slices.Sorted(maps.Keys(registered)) {
		if !documented[r] {
			t.Errorf("the router serves %s, which schemas/openapi.yaml does not describe", r)
		}
	}
	for _, d := range slices.Sorted(maps.Keys(documented)) {
		if !registered[d] {
			t.Errorf("schemas/openapi.yaml describes %s, which the router does not serve", d)
		}
	}
}

// TestOpenAPIOperationsAnswerAsDocumented sends every operation, with every
// example of its request body, to the real handler: the request follows the
// document, the answer is a 2xx (501 for an operation marked not
// implemented, and only for those), and the answer follows the document.
func TestOpenAPIOperationsAnswerAsDocumented(t *testing.T) {
	s := loadSpec(t)
	for _, o := range s.operations() {
		examples := o.examples(t)
		if examples == nil {
			examples = map[string]any{"without a body": nil}
		}
		for _, name := range slices.Sorted(maps.Keys(examples)) {
			t.Run(o.method+" "+o.path+" "+name, func(t *testing.T) {
				f := newSpecFixture(t)
				var body []byte
				if o.op.RequestBody != nil {
					var err error
					if body, err = json.Marshal(examples[name]); err != nil {
						t.Fatal(err)
					}
				}
				token := specToken
				if o.path == "/metrics" {
					token = specMetricsToken
				}
				if o.public() {
					token = "" // public operations must answer without one
				}
				target := f.path(o.path)
				s.validateRequest(t, newRequest(o.method, target, token, body))

				req := newRequest(o.method, target, token, body)
				rec := f.serve(req)
				switch {
				case o.notImplemented():
					wantError(t, rec, http.StatusNotImplemented, codeNotImplemented, "")
				case rec.Code < 200 || rec.Code > 299:
					t.Fatalf("status %d, want 2xx; body %s", rec.Code, rec.Body.String())
				}
				s.validateResponse(t, req, rec)
			})
		}
	}
}

func TestOpenAPIProtectedOperationsAnswer401WithoutAToken(t *testing.T) {
	s := loadSpec(t)
	f := newSpecFixture(t)
	for _, o := range s.operations() {
		if o.public() {
			continue
		}
		t.Run(o.method+" "+o.path, func(t *testing.T) {
			req := newRequest(o.method, f.path(o.path), "", nil)
			rec := f.serve(req)
			wantError(t, rec, http.StatusUnauthorized, codeUnauthorized, "")
			s.validateResponse(t, req, rec)
		})
	}
}

func TestOpenAPIDescribesRealAnswers(t *testing.T) {
	s := loadSpec(t)
	bigBody := []byte(`{"name":"` + strings.Repeat("x", DefaultMaxBodyBytes) + `"}`)
	for _, tc := range []struct {
		name         string
		method, path string
		body         string
		raw          []byte // sent instead of body
		prepare      func(f *specFixture)
		status       int
		code, field  string // of an error answer
	}{
		{name: "create with every field", method: http.MethodPost, path: "/v1/webhooks",
			body: `{"name":"all","url":"https://example.com/h","secret":"s","events":["ticket.*"],
				"identifier":"E-1","include_related":true,"condition":"data.x == 1","fields":["x"],
				"include_all_fields":false,"batching":{"mode":"any"},"headers":{"X-A":"1"},
				"auth":{"type":"basic","username":"u","password":"p"},"retries":1,"timeout_ms":100,"rate_limit":2.5,"max_concurrency":4}`,
			status: http.StatusCreated},
		{name: "list with a next page", method: http.MethodGet, path: "/v1/webhooks?limit=1&enabled=true",
			prepare: func(f *specFixture) {
				f.serve(newRequest(http.MethodPost, "/v1/webhooks", specToken, []byte(validWebhook)))
			},
			status: http.StatusOK},
		{name: "list filtered by name and event", method: http.MethodGet,
			path: "/v1/webhooks?name=crm,other&event=ticket.created&resource=ticket", status: http.StatusOK},
		{name: "deliveries filtered", method: http.MethodGet,
			path:   "/v1/webhooks/{id}/deliveries?state=succeeded&since=2026-11-22T00:00:00Z&until=2026-11-23T00:00:00Z&limit=10",
			status: http.StatusOK},
		{name: "a delivery that waits, listed", method: http.MethodGet, path: "/v1/webhooks/{id}/deliveries",
			prepare: waitingDelivery, status: http.StatusOK},
		{name: "a delivery that waits", method: http.MethodGet, path: "/v1/deliveries/{id}",
			prepare: waitingDelivery, status: http.StatusOK},
		{name: "disabled by Hookline", method: http.MethodGet, path: "/v1/webhooks/{id}",
			prepare: func(f *specFixture) {
				f.hooks.mu.Lock()
				defer f.hooks.mu.Unlock()
				w := f.hooks.byID[f.webhookID]
				w.Enabled, w.DisabledReason = false, "endpoint answered 410 Gone"
				f.hooks.byID[f.webhookID] = w
			},
			status: http.StatusOK},

		{name: "invalid webhook", method: http.MethodPost, path: "/v1/webhooks",
			body: `{"name":"x","url":"ftp://example.com"}`, status: http.StatusBadRequest, code: codeInvalid, field: "url"},
		{name: "malformed JSON", method: http.MethodPost, path: "/v1/webhooks",
			body: `{"name":`, status: http.StatusBadRequest, code: codeBadJSON},
		{name: "unknown field", method: http.MethodPatch, path: "/v1/webhooks/{id}",
			body: `{"nope":1}`, status: http.StatusBadRequest, code: codeInvalid, field: "nope"},
		{name: "bad list query", method: http.MethodGet, path: "/v1/webhooks?limit=0",
			status: http.StatusBadRequest, code: codeInvalid, field: "limit"},
		{name: "bad deliveries query", method: http.MethodGet, path: "/v1/webhooks/{id}/deliveries?state=lost",
			status: http.StatusBadRequest, code: codeInvalid, field: "state"},
		{name: "invalid event in an array", method: http.MethodPost, path: "/v1/events",
			body:   `[{"resource":"ticket","trigger":"create","resource_id":"T-1"},{"resource":"ticket"}]`,
			status: http.StatusBadRequest, code: codeInvalid, field: "[1].trigger"},
		{name: "unknown webhook", method: http.MethodGet, path: "/v1/webhooks/nope",
			status: http.StatusNotFound, code: codeNotFound},
		{name: "deliveries of an unknown webhook", method: http.MethodGet, path: "/v1/webhooks/nope/deliveries",
			status: http.StatusNotFound, code: codeNotFound},
		{name: "unknown delivery", method: http.MethodGet, path: "/v1/deliveries/nope",
			status: http.StatusNotFound, code: codeNotFound},
		{name: "invalid replay", method: http.MethodPost, path: "/v1/replays",
			body:   `{"webhook_ids":["` + specExampleWebhookID + `"],"from":{"offsets":{"0":-1}}}`,
			status: http.StatusBadRequest, code: codeInvalid, field: "from.offsets.0"},
		{name: "a failed replay", method: http.MethodGet, path: "/v1/replays/{id}",
			prepare: func(f *specFixture) {
				f.replays.add(schemas.Replay{ID: specReplayID, Tenant: "acme", State: schemas.ReplayFailed, Error: "topic gone",
					From: schemas.ReplayPosition{Offsets: map[string]int64{"0": 3}}, To: &schemas.ReplayPosition{Time: &t0},
					WebhookIDs: []string{specExampleWebhookID}, CreatedAt: t0, UpdatedAt: t0})
			},
			status: http.StatusOK},
		{name: "cancel a finished replay", method: http.MethodDelete, path: "/v1/replays/{id}",
			prepare: func(f *specFixture) {
				f.replays.add(schemas.Replay{ID: specReplayID, Tenant: "acme", State: schemas.ReplayDone, CreatedAt: t0, UpdatedAt: t0})
			},
			status: http.StatusConflict, code: codeConflict},
		{name: "unknown replay", method: http.MethodGet, path: "/v1/replays/nope",
			status: http.StatusNotFound, code: codeNotFound},
		{name: "body too large", method: http.MethodPost, path: "/v1/webhooks", raw: bigBody,
			status: http.StatusRequestEntityTooLarge, code: codeTooLarge},
		{name: "events too large", method: http.MethodPost, path: "/v1/events", raw: bigBody,
			status: http.StatusRequestEntityTooLarge, code: codeTooLarge},
		{name: "broker down on create", method: http.MethodPost, path: "/v1/webhooks", body: validWebhook,
			prepare: func(f *specFixture) { f.hooks.setErr(errors.New("broker down")) },
			status:  http.StatusServiceUnavailable, code: codeUnavailable},
		{name: "broker down on delete", method: http.MethodDelete, path: "/v1/webhooks/{id}",
			prepare: func(f *specFixture) { f.hooks.setErr(errors.New("broker down")) },
			status:  http.StatusServiceUnavailable, code: codeUnavailable},
		{name: "broker down on publish", method: http.MethodPost, path: "/v1/events",
			body: `{"resource":"ticket","trigger":"create","resource_id":"T-1"}`,
			prepare: func(f *specFixture) {
				f.events.mu.Lock()
				defer f.events.mu.Unlock()
				f.events.err = errors.New("broker down")
			},
			status: http.StatusServiceUnavailable, code: codeUnavailable},
		{name: "store down on list", method: http.MethodGet, path: "/v1/webhooks/{id}/deliveries",
			prepare: func(f *specFixture) { f.dels.setErr(errors.New("store down")) },
			status:  http.StatusServiceUnavailable, code: codeUnavailable},
		{name: "store down on get", method: http.MethodGet, path: "/v1/deliveries/{id}",
			prepare: func(f *specFixture) { f.dels.setErr(errors.New("store down")) },
			status:  http.StatusServiceUnavailable, code: codeUnavailable},
		{name: "not ready", method: http.MethodGet, path: "/readyz",
			prepare: func(f *specFixture) { f.notReady.Store(true) },
			status:  http.StatusServiceUnavailable, code: codeNotReady},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newSpecFixture(t)
			if tc.prepare != nil {
				tc.prepare(f)
			}
			body := tc.raw
			if body == nil && tc.body != "" {
				body = []byte(tc.body)
			}
			req := newRequest(tc.method, f.path(tc.path), specToken, body)
			rec := f.serve(req)
			if tc.code != "" {
				wantError(t, rec, tc.status, tc.code, tc.field)
			} else {
				mustStatus(t, rec, tc.status)
			}
			s.validateResponse(t, req, rec)
		})
	}
}

// waitingDelivery turns the fixture's delivery into one that waits for
// its first attempt: pending, with next_attempt_at, no attempt, and the
// body that will be sent.
func waitingDelivery(f *specFixture) {
	f.dels.mu.Lock()
	defer f.dels.mu.Unlock()
	next := t0.Add(time.Minute)
	for i, d := range f.dels.deliveries {
		if d.ID == specDeliveryID {
			d.State, d.AttemptCount, d.LastStatusCode, d.NextAttemptAt = schemas.StatePending, 0, 0, &next
			d.Request = &projections.Request{Body: d.Request.Body}
			d.Attempts = nil
			f.dels.deliveries[i] = d
			return
		}
	}
	panic("the fixture has no delivery " + specDeliveryID)
}

func TestOpenAPIDescribesTheMethodNotAllowedAnswer(t *testing.T) {
	s := loadSpec(t)
	f := newSpecFixture(t)
	rec := f.serve(newRequest(http.MethodPut, f.path("/v1/webhooks/{id}"), specToken, []byte(`{}`)))
	wantError(t, rec, http.StatusMethodNotAllowed, codeMethodNotAllowed, "")
	resp := s.doc.Components.Responses["MethodNotAllowed"]
	if resp == nil || resp.Value.Headers["Allow"] == nil {
		t.Fatal("components.responses.MethodNotAllowed with an Allow header is missing")
	}
	if rec.Header().Get("Allow") == "" {
		t.Error("no Allow header")
	}
	var body any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if err := resp.Value.Content.Get("application/json").Schema.Value.VisitJSON(body); err != nil {
		t.Errorf("the 405 body does not follow MethodNotAllowed: %v", err)
	}
}

// TestOpenAPIErrorCodesAreTheAPIs compares the documented error codes with
// the code constants of errors.go, both ways.
func TestOpenAPIErrorCodesAreTheAPIs(t *testing.T) {
	s := loadSpec(t)
	var documented []string
	for _, v := range s.doc.Components.Schemas["ErrorDetail"].Value.Properties["code"].Value.Enum {
		documented = append(documented, v.(string))
	}
	file, err := parser.ParseFile(token.NewFileSet(), "errors.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var codes []string
	ast.Inspect(file, func(n ast.Node) bool {
		spec, ok := n.(*ast.ValueSpec)
		if !ok || len(spec.Names) != 1 || len(spec.Values) != 1 || !strings.HasPrefix(spec.Names[0].Name, "code") {
			return true
		}
		if lit, ok := spec.Values[0].(*ast.BasicLit); ok && lit.Kind == token.STRING {
			v, err := strconv.Unquote(lit.Value)
			if err != nil {
				t.Fatal(err)
			}
			codes = append(codes, v)
		}
		return true
	})
	slices.Sort(documented)
	slices.Sort(codes)
	if len(codes) == 0 || !slices.Equal(documented, codes) {
		t.Errorf("documented error codes %v, errors.go has %v", documented, codes)
	}
}

func TestOpenAPIDocumentIsServedWithoutAToken(t *testing.T) {
	f := newSpecFixture(t)
	rec := f.serve(newRequest(http.MethodGet, "/v1/openapi.yaml", "", nil))
	mustStatus(t, rec, http.StatusOK)
	if ct := rec.Header().Get("Content-Type"); ct != "application/yaml" {
		t.Errorf("Content-Type %q, want application/yaml", ct)
	}
	if !bytes.Equal(rec.Body.Bytes(), schemas.OpenAPI) {
		t.Errorf("the body is not schemas.OpenAPI (%d bytes, want %d)", rec.Body.Len(), len(schemas.OpenAPI))
	}
	if len(schemas.OpenAPI) == 0 || !bytes.HasPrefix(schemas.OpenAPI, []byte("openapi: 3.")) {
		t.Errorf("schemas.OpenAPI does not start as an OpenAPI 3 document: %.40q", schemas.OpenAPI)
	}

	head := f.serve(newRequest(http.MethodHead, "/v1/openapi.yaml", "", nil))
	mustStatus(t, head, http.StatusOK)
	if head.Header().Get("Content-Length") != strconv.Itoa(len(schemas.OpenAPI)) {
		t.Errorf("HEAD Content-Length %q", head.Header().Get("Content-Length"))
	}
}
