package schemas

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"path"
	"reflect"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
)

// schemaBase is the $id of every schema file without its file name.
const schemaBase = "https://raw.githubusercontent.com/hookline/hookline/main/schemas/jsonschema/"

// schemaFiles are the schema files and the Go types they describe.
var schemaFiles = map[string]reflect.Type{
	"event.schema.json":         reflect.TypeFor[Event](),
	"webhook_event.schema.json": reflect.TypeFor[WebhookEvent](),
	"delivery_job.schema.json":  reflect.TypeFor[Job](),
	"attempt.schema.json":       reflect.TypeFor[Attempt](),
	"dead_letter.schema.json":   reflect.TypeFor[DeadLetter](),
	"envelope.schema.json":      reflect.TypeFor[Envelope](),
}

// loadSchemaDocs reads every embedded schema file as a JSON document.
func loadSchemaDocs(t *testing.T) map[string]any {
	t.Helper()
	names, err := fs.Glob(JSONSchemas, "jsonschema/*.json")
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]any{}
	for _, name := range names {
		raw, err := JSONSchemas.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		docs[path.Base(name)] = doc
	}
	return docs
}

// compileSchemas compiles every schema file, with format assertions on, and
// returns them by file name.
func compileSchemas(t *testing.T) map[string]*jsonschema.Schema {
	t.Helper()
	docs := loadSchemaDocs(t)
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft2020)
	c.AssertFormat()
	for name, doc := range docs {
		if err := c.AddResource(schemaBase+name, doc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	compiled := map[string]*jsonschema.Schema{}
	for name := range docs {
		sch, err := c.Compile(schemaBase + name)
		if err != nil {
			t.Fatalf("compile %s: %v", name, err)
		}
		compiled[name] = sch
	}
	return compiled
}

// validateJSON validates raw JSON against a compiled schema.
func validateJSON(t *testing.T, sch *jsonschema.Schema, raw []byte) error {
	t.Helper()
	inst, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("not JSON: %v\n%s", err, raw)
	}
	return sch.Validate(inst)
}

func TestJSONSchemasCompile(t *testing.T) {
	docs := loadSchemaDocs(t)
	for name := range schemaFiles {
		if docs[name] == nil {
			t.Errorf("schema file %s is missing", name)
		}
	}
	for name, doc := range docs {
		if _, ok := schemaFiles[name]; !ok {
			t.Errorf("schema file %s is not tested against a Go type: add it to schemaFiles", name)
		}
		obj, _ := doc.(map[string]any)
		if got := obj["$schema"]; got != "https://json-schema.org/draft/2020-12/schema" {
			t.Errorf("%s: $schema = %v, want draft 2020-12", name, got)
		}
		if got := obj["$id"]; got != schemaBase+name {
			t.Errorf("%s: $id = %v, want %s", name, got, schemaBase+name)
		}
		if obj["title"] == nil || obj["description"] == nil {
			t.Errorf("%s: needs a title and a description", name)
		}
	}
	// Compiling also validates each file against the 2020-12 meta-schema
	// and resolves every $ref between the files.
	compiled := compileSchemas(t)
	if len(compiled) != len(schemaFiles) {
		t.Errorf("compiled %d schemas, want %d", len(compiled), len(schemaFiles))
	}
}

// Filled-in values of every type: every field set, so that each property of
// the Go type shows up in its JSON.
var (
	testTime = time.Date(2026, 11, 22, 10, 0, 0, 123456789, time.UTC)

	fullEvent = Event{
		ID: "b6f5c3c2-0000-4000-8000-000000000001", Type: "ticket.updated",
		Resource: "ticket", Trigger: "update", ResourceID: "9c1e",
		Tenant: "d0a3f370", OccurredAt: testTime,
		Related: []Related{{Resource: "event", ID: "e42"}},
		Data:    json.RawMessage(`{"priority":"High","assignee":null}`),
		Changes: json.RawMessage(`{"priority":{"old":"Low","new":"High"}}`),
		Context: json.RawMessage(`{"actor":"admin@company.com"}`),
	}

	fullEnvelope = Envelope{
		ID: "0193a0b4-7c00-7000-8000-000000000001", EventID: fullEvent.ID, EventType: fullEvent.Type,
		EventTime: testTime, Resource: "ticket", ResourceID: "9c1e", WebhookID: "wh_1",
		CurrentContext: fullEvent.Context, Data: fullEvent.Data, Changes: fullEvent.Changes,
	}

	fullWebhook = Webhook{
		ID: "wh_1", Tenant: "d0a3f370", Name: "Ticket sync", URL: "https://example.com/hooks?x=1",
		Enabled: true, ContentType: ContentTypeForm, Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", PreviousSecrets: []PreviousSecret{{Secret: "old", Until: time.Date(2026, 12, 7, 0, 0, 0, 0, time.UTC)}},
		Events: []string{"ticket.*", "order.scanned", "*"}, Identifier: "9c1e",
		IncludeRelated: true, Condition: `data.priority == "High"`, Fields: []string{"priority", "customer.email"},
		IncludeAllFields: ptr(false), IncludeChanges: ptr(false), SelectValues: SelectValuesDisplay, Batching: &Batching{Mode: BatchSameType, WaitSeconds: 10, MaxItems: 50},
		Headers: map[string]string{"X-Team": "support", "X-Api-Version": "2"},
		Auth:    &Auth{Type: AuthOAuth2Client, TokenURL: "https://idp.example.com/token", ClientID: "c", ClientSecret: "s", Scopes: []string{"hooks"}},
		Retries: DefaultRetries, TimeoutMS: DefaultTimeoutMS, RateLimit: 2.5, MaxConcurrency: 8, DisabledReason: "410 Gone",
		DisabledAt: ptr(testTime.Add(30 * time.Minute)), CreatedAt: testTime, UpdatedAt: testTime.Add(time.Hour), Version: 3,
	}

	fullWebhookEvent = WebhookEvent{Op: OpUpdated, At: testTime, Webhook: fullWebhook}

	fullJob = Job{
		DeliveryID: fullEnvelope.ID, WebhookID: "wh_1", Tenant: "d0a3f370",
		EventIDs: []string{fullEvent.ID}, EventType: "ticket.updated", ResourceID: "9c1e",
		CreatedAt: testTime, Payload: mustJSON(fullEnvelope), Attempts: 2,
		Deferrals: 1, DueAt: testTime.Add(time.Minute), Reason: RetryAfterFailure, Queue: &QueuePlace{Session: "s1", Seq: 7, Pos: 3},
		RedeliveryOf: "0193a0b4-7c00-7000-8000-000000000000", ReplayID: "rp_1", Test: true,
	}

	fullAttempt = Attempt{
		DeliveryID: fullJob.DeliveryID, WebhookID: "wh_1", Tenant: "d0a3f370",
		EventIDs: fullJob.EventIDs, EventType: "ticket.updated", N: 3, State: StateRetrying,
		At: testTime, DeliveryCreatedAt: testTime.Add(-time.Minute), StatusCode: 503, DurationMS: 1234,
		Error: "reading response body: unexpected EOF", URL: fullWebhook.URL,
		RequestHeaders:  map[string]string{"Content-Type": "application/json", "Authorization": "***"},
		RequestBody:     string(fullJob.Payload),
		ResponseHeaders: map[string]string{"Retry-After": "120"},
		ResponseBody:    "busy", RedeliveryOf: fullJob.RedeliveryOf, ReplayID: "rp_1",
		NextAttemptAt: ptr(testTime.Add(time.Minute)),
	}

	fullDeadLetter = DeadLetter{
		Reason: "failed after 5 retries: 503", At: testTime, Topic: TopicRetryPrefix + "2h",
		Partition: 4, Offset: 1017, Key: "wh_1", Value: `{"delivery_id":"..."}`,
		Job: &fullJob, LastAttempt: &fullAttempt,
	}
)

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// requireFilled fails when a field of v (a struct, or a pointer to one) is
// its zero value, following nested structs of this package: a new field
// must be given a value in the fixtures above, so that it is checked
// against its schema.
func requireFilled(t *testing.T, where string, v reflect.Value) {
	t.Helper()
	if v.Kind() == reflect.Pointer {
		v = v.Elem()
	}
	for i := range v.NumField() {
		f, fv := v.Type().Field(i), v.Field(i)
		if fv.IsZero() {
			t.Errorf("%s.%s is not filled in: give it a value so that its schema is checked", where, f.Name)
			continue
		}
		et := f.Type
		for et.Kind() == reflect.Pointer || et.Kind() == reflect.Slice {
			et = et.Elem()
		}
		if et.Kind() != reflect.Struct || et.PkgPath() != v.Type().PkgPath() {
			continue
		}
		if et == reflect.TypeOf(Auth{}) {
			continue // a union: each type has its own fields, checked in TestWebhookSchemaAgreesWithValidate
		}
		switch fv.Kind() {
		case reflect.Slice:
			for j := range fv.Len() {
				requireFilled(t, where+"."+f.Name, fv.Index(j))
			}
		default:
			requireFilled(t, where+"."+f.Name, fv)
		}
	}
}

func TestJSONSchemasAcceptGoValues(t *testing.T) {
	compiled := compileSchemas(t)
	full := map[string]any{
		"event.schema.json":         fullEvent,
		"envelope.schema.json":      fullEnvelope,
		"webhook_event.schema.json": fullWebhookEvent,
		"delivery_job.schema.json":  fullJob,
		"attempt.schema.json":       fullAttempt,
		"dead_letter.schema.json":   fullDeadLetter,
	}
	for name, v := range full {
		requireFilled(t, reflect.TypeOf(v).Name(), reflect.ValueOf(v))
		if reflect.TypeOf(v) != schemaFiles[name] {
			t.Errorf("%s: fixture is a %v, want %v", name, reflect.TypeOf(v), schemaFiles[name])
		}
	}

	// A webhook as the API creates it from the smallest valid input.
	var created Webhook
	in := WebhookInput{Name: ptr("  minimal  "), URL: ptr("http://10.0.0.1:8080")}
	if err := in.Apply(&created, true); err != nil {
		t.Fatal(err)
	}
	created.ID, created.Tenant, created.Version = "wh_2", DefaultTenant, 1
	created.CreatedAt, created.UpdatedAt = testTime, testTime

	// An event as DecodeEvent fills it in from the smallest valid input.
	decoded, err := DecodeEvent([]byte(`{"resource":"order","trigger":"scan","resource_id":"o1"}`), testTime, "ev_2")
	if err != nil {
		t.Fatal(err)
	}

	deleteEnvelope := fullEnvelope
	deleteEnvelope.CurrentContext, deleteEnvelope.Data = nil, nil
	batch := fullJob
	batch.ResourceID, batch.RedeliveryOf, batch.ReplayID, batch.Attempts = "", "", "", 0
	batch.EventIDs = []string{"ev_1", "ev_2"}
	batch.Payload = mustJSON([]Envelope{fullEnvelope, deleteEnvelope})
	noRequest := Attempt{
		DeliveryID: "d1", WebhookID: "wh_1", Tenant: DefaultTenant, EventIDs: []string{"ev_1"},
		EventType: "ticket.created", N: 1, State: StateFailed, At: testTime, DeliveryCreatedAt: testTime,
		Error: "invalid request: bad header", URL: "https://example.com",
	}
	succeeded := fullAttempt
	succeeded.StatusCode, succeeded.Error, succeeded.State = 204, "", StateSucceeded

	cases := []struct {
		name, schema string
		value        any
	}{
		{"full event", "event.schema.json", fullEvent},
		{"decoded event", "event.schema.json", decoded},
		{"full envelope", "envelope.schema.json", fullEnvelope},
		{"delete envelope", "envelope.schema.json", deleteEnvelope},
		{"full webhook event", "webhook_event.schema.json", fullWebhookEvent},
		{"created webhook", "webhook_event.schema.json", WebhookEvent{Op: OpCreated, At: testTime, Webhook: created}},
		{"deleted webhook", "webhook_event.schema.json", WebhookEvent{Op: OpDeleted, At: testTime, Webhook: created}},
		{"full job", "delivery_job.schema.json", fullJob},
		{"batch job", "delivery_job.schema.json", batch},
		{"full attempt", "attempt.schema.json", fullAttempt},
		{"succeeded attempt", "attempt.schema.json", succeeded},
		{"attempt without a request", "attempt.schema.json", noRequest},
		{"full dead letter", "dead_letter.schema.json", fullDeadLetter},
		{"undecodable input", "dead_letter.schema.json", DeadLetter{
			Reason: "not a JSON object: message must be a JSON object", At: testTime,
			Topic: TopicEvents, Partition: 0, Offset: 0, Key: "k", Value: "hello"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			raw := mustJSON(tc.value)
			if err := validateJSON(t, compiled[tc.schema], raw); err != nil {
				t.Fatalf("%s refuses the JSON of a Go %T:\n%s\n%v", tc.schema, tc.value, raw, err)
			}
		})
	}
}

func ptr[T any](v T) *T { return &v }

func TestJSONSchemasRefuseInvalid(t *testing.T) {
	compiled := compileSchemas(t)
	// edit returns the JSON of v with the top-level fields in set replaced
	// (a nil value removes the field).
	edit := func(v any, set map[string]any) string {
		var m map[string]any
		if err := json.Unmarshal(mustJSON(v), &m); err != nil {
			t.Fatal(err)
		}
		for k, x := range set {
			if x == nil {
				delete(m, k)
			} else {
				m[k] = x
			}
		}
		return string(mustJSON(m))
	}
	webhookWith := func(set map[string]any) string {
		return `{"op":"created","at":"2026-11-22T10:00:00Z","webhook":` + edit(fullWebhook, set) + `}`
	}
	cases := []struct {
		name, schema, raw string
		want              string // a fragment of the validation error
	}{
		{"event missing resource_id", "event.schema.json", edit(fullEvent, map[string]any{"resource_id": nil}), "resource_id"},
		{"event missing resource", "event.schema.json", `{"trigger":"update","resource_id":"t1"}`, "resource"},
		{"event missing trigger", "event.schema.json", `{"resource":"ticket","resource_id":"t1"}`, "trigger"},
		{"event with empty resource_id", "event.schema.json", `{"resource":"ticket","trigger":"update","resource_id":""}`, "resource_id"},
		{"event resource with a dot", "event.schema.json", `{"resource":"a.b","trigger":"update","resource_id":"x"}`, "resource"},
		{"event related without id", "event.schema.json", `{"resource":"ticket","trigger":"update","resource_id":"x","related":[{"resource":"event"}]}`, "related"},
		{"event with a bad time", "event.schema.json", edit(fullEvent, map[string]any{"occurred_at": "yesterday"}), "occurred_at"},
		{"event data not an object", "event.schema.json", edit(fullEvent, map[string]any{"data": "text"}), "data"},
		{"event not an object", "event.schema.json", `[1,2]`, "object"},
		{"attempt with n -1", "attempt.schema.json", edit(fullAttempt, map[string]any{"n": -1}), "/n"},
		{"attempt with n 0 that is not pending", "attempt.schema.json", edit(fullAttempt, map[string]any{"n": 0}), "state"},
		{"attempt with an unknown state", "attempt.schema.json", edit(fullAttempt, map[string]any{"state": "done"}), "state"},
		{"attempt with status 42", "attempt.schema.json", edit(fullAttempt, map[string]any{"status_code": 42}), "status_code"},
		{"attempt with an unknown field", "attempt.schema.json", edit(fullAttempt, map[string]any{"status": 200}), "status"},
		{"webhook_event with op frobbed", "webhook_event.schema.json", edit(fullWebhookEvent, map[string]any{"op": "frobbed"}), "op"},
		{"webhook without url", "webhook_event.schema.json", webhookWith(map[string]any{"url": nil}), "url"},
		{"webhook with an ftp url", "webhook_event.schema.json", webhookWith(map[string]any{"url": "ftp://example.com"}), "url"},
		{"webhook with credentials in the url", "webhook_event.schema.json", webhookWith(map[string]any{"url": "https://u:p@example.com"}), "url"},
		{"webhook with no events", "webhook_event.schema.json", webhookWith(map[string]any{"events": []string{}}), "events"},
		{"webhook with a bad event pattern", "webhook_event.schema.json", webhookWith(map[string]any{"events": []string{"ticket*"}}), "events"},
		{"webhook with 51 retries", "webhook_event.schema.json", webhookWith(map[string]any{"retries": 51}), "retries"},
		{"webhook with timeout 0", "webhook_event.schema.json", webhookWith(map[string]any{"timeout_ms": 0}), "timeout_ms"},
		{"webhook with a text content type", "webhook_event.schema.json", webhookWith(map[string]any{"content_type": "text/plain"}), "content_type"},
		{"webhook with a bad header name", "webhook_event.schema.json", webhookWith(map[string]any{"headers": map[string]string{"X Bad": "1"}}), "X Bad"},
		{"webhook with a header value on two lines", "webhook_event.schema.json", webhookWith(map[string]any{"headers": map[string]string{"X-A": "1\r\nX-B: 2"}}), "headers"},
		{"webhook with an unknown field", "webhook_event.schema.json", webhookWith(map[string]any{"has_secret": true}), "has_secret"},
		{"job without payload", "delivery_job.schema.json", edit(fullJob, map[string]any{"payload": nil}), "payload"},
		{"job with a string payload", "delivery_job.schema.json", edit(fullJob, map[string]any{"payload": "hello"}), "payload"},
		{"job with no event ids", "delivery_job.schema.json", edit(fullJob, map[string]any{"event_ids": []string{}}), "event_ids"},
		{"job with negative attempts", "delivery_job.schema.json", edit(fullJob, map[string]any{"attempts": -1}), "attempts"},
		{"dead letter without reason", "dead_letter.schema.json", edit(fullDeadLetter, map[string]any{"reason": nil}), "reason"},
		{"dead letter with a broken attempt", "dead_letter.schema.json", edit(fullDeadLetter, map[string]any{"last_attempt": map[string]any{"n": 1}}), "last_attempt"},
		{"envelope without id", "envelope.schema.json", edit(fullEnvelope, map[string]any{"id": nil}), "id"},
		{"envelope with a bad event_time", "envelope.schema.json", edit(fullEnvelope, map[string]any{"event_time": "2026-11-22"}), "event_time"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := validateJSON(t, compiled[tc.schema], []byte(tc.raw))
			if err == nil {
				t.Fatalf("%s accepts %s", tc.schema, tc.raw)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error does not mention %q:\n%v", tc.want, err)
			}
		})
	}
}

// The event schema and DecodeEvent agree on what is an event.
func TestEventSchemaAgreesWithDecodeEvent(t *testing.T) {
	sch := compileSchemas(t)["event.schema.json"]
	inputs := []string{
		`{"resource":"ticket","trigger":"update","resource_id":"t1"}`,
		`{"resource":"ticket","trigger":"update","resource_id":"t1","type":"","id":""}`,
		`{"type":"ticket.moved","resource":"ticket","trigger":"update","resource_id":"t1","tenant":"acme"}`,
		`{"resource":"ticket","trigger":"update","resource_id":"t1","related":[{"resource":"event","id":"e"}],"data":{"a":1},"changes":null,"context":{}}`,
		`{"resource":"ticket","trigger":"update","resource_id":"t1","unknown":"ignored"}`,
		`{"trigger":"update","resource_id":"t1"}`,
		`{"resource":"ticket","resource_id":"t1"}`,
		`{"resource":"ticket","trigger":"update"}`,
		`{"resource":"ticket","trigger":"update","resource_id":""}`,
		`{"resource":"","trigger":"update","resource_id":"t1"}`,
		`{"resource":"ticket","trigger":"","resource_id":"t1"}`,
		`{"resource":"a.b","trigger":"update","resource_id":"x"}`,
		`{"resource":"tick*","trigger":"update","resource_id":"x"}`,
		`{"resource":"ticket","trigger":"update","resource_id":"x","related":[{"resource":"event"}]}`,
		`{"resource":"ticket","trigger":"update","resource_id":"x","related":[{"id":"e"}]}`,
		`{"resource":5,"trigger":"update","resource_id":"x"}`,
		`{"resource":"ticket","trigger":"update","resource_id":"x","occurred_at":"not a time"}`,
		`{}`,
		`null`,
		`[1,2]`,
		`"ticket"`,
	}
	for _, raw := range inputs {
		_, goErr := DecodeEvent([]byte(raw), testTime, "fallback")
		schemaErr := validateJSON(t, sch, []byte(raw))
		if (goErr == nil) != (schemaErr == nil) {
			t.Errorf("%s: DecodeEvent err = %v, schema err = %v", raw, goErr, schemaErr)
		}
	}
}

// The webhook schema and Webhook.Validate agree on what is a webhook.
func TestWebhookSchemaAgreesWithValidate(t *testing.T) {
	sch := compileSchemas(t)["webhook_event.schema.json"]
	variants := []func(w *Webhook){
		func(w *Webhook) {},
		func(w *Webhook) { w.Secret, w.Identifier, w.Headers = "", "", nil },
		func(w *Webhook) { w.URL = "http://[::1]:9000/in#frag" },
		func(w *Webhook) { w.URL = "https://example.com/a@b" },
		func(w *Webhook) { w.URL = "" },
		func(w *Webhook) { w.URL = "example.com/hook" },
		func(w *Webhook) { w.URL = "ftp://example.com" },
		func(w *Webhook) { w.URL = "https://user@example.com" },
		func(w *Webhook) { w.URL = "https://" },
		func(w *Webhook) { w.URL = "https://example.com/" + strings.Repeat("a", 2048) },
		func(w *Webhook) { w.Name = "" },
		func(w *Webhook) { w.Name = strings.Repeat("n", 200) },
		func(w *Webhook) { w.Name = strings.Repeat("n", 201) },
		func(w *Webhook) { w.ContentType = "text/plain" },
		func(w *Webhook) { w.Secret = strings.Repeat("s", 500) },
		func(w *Webhook) { w.Secret = strings.Repeat("s", 501) },
		func(w *Webhook) { w.Events = nil },
		func(w *Webhook) { w.Events = []string{"*"} },
		func(w *Webhook) { w.Events = []string{"ticket.*", "shop.paid"} },
		func(w *Webhook) { w.Events = []string{"ticket"} },
		func(w *Webhook) { w.Events = []string{"*.created"} },
		func(w *Webhook) { w.Events = []string{"ticket.cre*"} },
		func(w *Webhook) { w.Events = []string{"ticket.a.b"} },
		func(w *Webhook) { w.Events = []string{"ticket. created"} },
		func(w *Webhook) { w.Headers = map[string]string{"X-Ok": "yes"} },
		func(w *Webhook) { w.Headers = map[string]string{"": "x"} },
		func(w *Webhook) { w.Headers = map[string]string{"X:Y": "x"} },
		func(w *Webhook) { w.Headers = map[string]string{"X-A": "a\nb"} },
		func(w *Webhook) { w.Headers = map[string]string{"X-A": "a\x00b"} },
		func(w *Webhook) { w.Headers = map[string]string{"X-A": strings.Repeat("v", 4097)} },
		func(w *Webhook) {
			w.Headers = map[string]string{}
			for i := range 51 {
				w.Headers["X-H"+strings.Repeat("i", i+1)] = "1"
			}
		},
		func(w *Webhook) { w.Retries = 0 },
		func(w *Webhook) { w.Retries = MaxRetries },
		func(w *Webhook) { w.Retries = MaxRetries + 1 },
		func(w *Webhook) { w.Retries = -1 },
		func(w *Webhook) { w.TimeoutMS = 1 },
		func(w *Webhook) { w.TimeoutMS = MaxTimeoutMS },
		func(w *Webhook) { w.TimeoutMS = MaxTimeoutMS + 1 },
		func(w *Webhook) { w.TimeoutMS = 0 },
		func(w *Webhook) { w.RateLimit = 0 },
		func(w *Webhook) { w.RateLimit = MaxRateLimit },
		func(w *Webhook) { w.RateLimit = MaxRateLimit + 1 },
		func(w *Webhook) { w.RateLimit = -0.5 },
		func(w *Webhook) { w.RateLimit = MinRateLimit },
		func(w *Webhook) { w.RateLimit = 1e-300 },
		func(w *Webhook) { w.MaxConcurrency = 1 },
		func(w *Webhook) { w.MaxConcurrency = MaxMaxConcurrency },
		func(w *Webhook) { w.MaxConcurrency = MaxMaxConcurrency + 1 },
		func(w *Webhook) { w.Auth = nil },
		func(w *Webhook) { w.Auth = &Auth{Type: AuthNone} },
		func(w *Webhook) { w.Auth = &Auth{Type: AuthNone, Token: "t"} },
		func(w *Webhook) { w.Auth = &Auth{Type: AuthBasic, Username: "u", Password: "p"} },
		func(w *Webhook) { w.Auth = &Auth{Type: AuthBasic, Username: "u"} },
		func(w *Webhook) { w.Auth = &Auth{Type: AuthBasic, Username: "u", Password: "p", Token: "t"} },
		func(w *Webhook) { w.Auth = &Auth{Type: AuthBearer, Token: "t"} },
		func(w *Webhook) { w.Auth = &Auth{Type: AuthBearer} },
		func(w *Webhook) { w.Auth = &Auth{Type: AuthAPIKey, Header: "X-Key", Value: "v"} },
		func(w *Webhook) { w.Auth = &Auth{Type: AuthAPIKey, Value: "v"} },
		func(w *Webhook) {
			w.Auth = &Auth{Type: AuthOAuth2Client, TokenURL: "https://idp/t", ClientID: "c", ClientSecret: "s"}
		},
		func(w *Webhook) { w.Auth = &Auth{Type: AuthOAuth2Client, TokenURL: "https://idp/t", ClientID: "c"} },
		func(w *Webhook) { w.Auth = &Auth{Type: "digest"} },
	}
	for i, change := range variants {
		w := fullWebhook
		w.Headers = map[string]string{"X-Team": "support"}
		change(&w)
		raw := mustJSON(WebhookEvent{Op: OpCreated, At: testTime, Webhook: w})
		goErr := w.Validate()
		schemaErr := validateJSON(t, sch, raw)
		if (goErr == nil) != (schemaErr == nil) {
			t.Errorf("variant %d %s: Validate err = %v, schema err = %v", i, raw, goErr, schemaErr)
		}
	}
}

// jsonFields lists the JSON names of a struct's fields and those that are
// always present (no omitempty).
func jsonFields(t reflect.Type) (names, always []string) {
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		tag := f.Tag.Get("json")
		name, opts, _ := strings.Cut(tag, ",")
		if name == "-" && opts == "" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		names = append(names, name)
		if o := strings.Split(opts, ","); !slices.Contains(o, "omitempty") && !slices.Contains(o, "omitzero") {
			always = append(always, name)
		}
	}
	sort.Strings(names)
	sort.Strings(always)
	return names, always
}

// at follows a slash-separated path of object keys in a schema document.
func at(t *testing.T, doc any, p string) map[string]any {
	t.Helper()
	for _, key := range strings.Split(p, "/") {
		if key == "" {
			continue
		}
		obj, ok := doc.(map[string]any)
		if !ok {
			t.Fatalf("no %s in the schema", p)
		}
		doc = obj[key]
	}
	obj, ok := doc.(map[string]any)
	if !ok {
		t.Fatalf("no object at %s in the schema", p)
	}
	return obj
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func stringList(v any) []string {
	list, _ := v.([]any)
	out := make([]string, 0, len(list))
	for _, x := range list {
		s, _ := x.(string)
		out = append(out, s)
	}
	sort.Strings(out)
	return out
}

// Every schema lists exactly the JSON fields of its Go type, and the messages
// Hookline writes itself require exactly the fields Go always writes.
func TestJSONSchemasMatchGoFields(t *testing.T) {
	docs := loadSchemaDocs(t)
	cases := []struct {
		schema, path string
		typ          reflect.Type
		// requiredFromGo: the schema's required list is the Go fields
		// without omitempty. Input events are written by producers, who
		// may leave out what Hookline fills in.
		requiredFromGo bool
	}{
		{"event.schema.json", "", reflect.TypeFor[Event](), false},
		{"event.schema.json", "properties/related/items", reflect.TypeFor[Related](), true},
		{"envelope.schema.json", "", reflect.TypeFor[Envelope](), true},
		{"webhook_event.schema.json", "", reflect.TypeFor[WebhookEvent](), true},
		{"webhook_event.schema.json", "$defs/webhook", reflect.TypeFor[Webhook](), true},
		{"delivery_job.schema.json", "", reflect.TypeFor[Job](), true},
		{"attempt.schema.json", "", reflect.TypeFor[Attempt](), true},
		{"dead_letter.schema.json", "", reflect.TypeFor[DeadLetter](), true},
	}
	for _, tc := range cases {
		t.Run(tc.typ.Name(), func(t *testing.T) {
			obj := at(t, docs[tc.schema], tc.path)
			names, always := jsonFields(tc.typ)
			props := sortedKeys(at(t, obj, "properties"))
			if !slices.Equal(props, names) {
				t.Errorf("%s %s: properties %v, Go %v has %v", tc.schema, tc.path, props, tc.typ, names)
			}
			if tc.requiredFromGo {
				if req := stringList(obj["required"]); !slices.Equal(req, always) {
					t.Errorf("%s %s: required %v, Go %v always writes %v", tc.schema, tc.path, req, tc.typ, always)
				}
			}
		})
	}
	event := at(t, docs["event.schema.json"], "")
	if req := stringList(event["required"]); !slices.Equal(req, []string{"resource", "resource_id", "trigger"}) {
		t.Errorf("event.schema.json: required %v, want resource, trigger and resource_id", req)
	}
}
