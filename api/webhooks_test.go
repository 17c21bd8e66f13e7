package api

import (
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/hookline/hookline/schemas"
	"github.com/hookline/hookline/sealing"
)

const validWebhook = `{"name":"crm","url":"https://example.com/hook","secret":"s3cr3t-value","events":["ticket.*"]}`

func createWebhook(t *testing.T, h *harness, token, body string) schemas.PublicWebhook {
	t.Helper()
	rec := h.do(http.MethodPost, "/v1/webhooks", token, body)
	mustStatus(t, rec, http.StatusCreated)
	return decodeBody[schemas.PublicWebhook](t, rec)
}

func TestWebhookCreateGetListUpdateDeleteRoundTrip(t *testing.T) {
	h := newHarness(t, Config{}, nil)

	rec := h.do(http.MethodPost, "/v1/webhooks", "", validWebhook)
	mustStatus(t, rec, http.StatusCreated)
	created := decodeBody[schemas.PublicWebhook](t, rec)
	if created.ID != "id-0001" || created.Name != "crm" || !created.Enabled || !created.HasSecret ||
		created.ContentType != schemas.ContentTypeJSON || created.Retries != schemas.DefaultRetries ||
		!slices.Equal(created.Events, []string{"ticket.*"}) {
		t.Fatalf("created = %+v", created)
	}
	if loc := rec.Header().Get("Location"); loc != "/v1/webhooks/id-0001" {
		t.Errorf("Location %q", loc)
	}
	if created.CreatedAt.Location().String() != "UTC" || !created.CreatedAt.Equal(created.UpdatedAt) {
		t.Errorf("times %v %v, want equal and UTC", created.CreatedAt, created.UpdatedAt)
	}
	if !strings.Contains(rec.Body.String(), `"created_at":"2026-11-22T10:00:01Z"`) {
		t.Errorf("created_at not RFC 3339 UTC in %s", rec.Body.String())
	}
	evs := h.hooks.events()
	if len(evs) != 1 || evs[0].Op != schemas.OpCreated || evs[0].Webhook.Version != 1 ||
		evs[0].Webhook.Tenant != schemas.DefaultTenant || evs[0].Webhook.Secret != "s3cr3t-value" {
		t.Fatalf("published %+v", evs)
	}

	rec = h.do(http.MethodGet, "/v1/webhooks/id-0001", "", "")
	mustStatus(t, rec, http.StatusOK)
	if got := decodeBody[schemas.PublicWebhook](t, rec); got.ID != created.ID || got.URL != created.URL {
		t.Errorf("get = %+v", got)
	}

	rec = h.do(http.MethodGet, "/v1/webhooks", "", "")
	mustStatus(t, rec, http.StatusOK)
	if l := decodeBody[list[schemas.PublicWebhook]](t, rec); len(l.Data) != 1 || l.Data[0].ID != created.ID || l.NextCursor != "" {
		t.Errorf("list = %+v", l)
	}

	rec = h.do(http.MethodPatch, "/v1/webhooks/id-0001", "", `{"enabled":false}`)
	mustStatus(t, rec, http.StatusOK)
	updated := decodeBody[schemas.PublicWebhook](t, rec)
	if updated.Enabled || !updated.HasSecret || updated.Name != "crm" || !updated.UpdatedAt.After(updated.CreatedAt) ||
		!updated.CreatedAt.Equal(created.CreatedAt) {
		t.Errorf("updated = %+v", updated)
	}
	evs = h.hooks.events()
	if len(evs) != 2 || evs[1].Op != schemas.OpUpdated || evs[1].Webhook.Version != 2 || evs[1].Webhook.Enabled {
		t.Fatalf("published %+v", evs)
	}

	rec = h.do(http.MethodDelete, "/v1/webhooks/id-0001", "", "")
	mustStatus(t, rec, http.StatusNoContent)
	if rec.Body.Len() != 0 {
		t.Errorf("204 with a body %q", rec.Body.String())
	}
	evs = h.hooks.events()
	if len(evs) != 3 || evs[2].Op != schemas.OpDeleted || evs[2].Webhook.ID != "id-0001" || evs[2].Webhook.Version != 3 {
		t.Fatalf("published %+v", evs)
	}
	wantError(t, h.do(http.MethodGet, "/v1/webhooks/id-0001", "", ""), http.StatusNotFound, codeNotFound, "")
	wantError(t, h.do(http.MethodDelete, "/v1/webhooks/id-0001", "", ""), http.StatusNotFound, codeNotFound, "")
}

func TestSecretIsNeverReturned(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	answers := []string{
		h.do(http.MethodPost, "/v1/webhooks", "", validWebhook).Body.String(),
		h.do(http.MethodGet, "/v1/webhooks/id-0001", "", "").Body.String(),
		h.do(http.MethodGet, "/v1/webhooks", "", "").Body.String(),
		h.do(http.MethodPatch, "/v1/webhooks/id-0001", "", `{"name":"renamed"}`).Body.String(),
	}
	for i, body := range answers {
		if strings.Contains(body, "s3cr3t-value") || strings.Contains(body, `"secret"`) {
			t.Errorf("answer %d shows the secret: %s", i, body)
		}
		if !strings.Contains(body, `"has_secret":true`) {
			t.Errorf("answer %d lacks has_secret: %s", i, body)
		}
	}
	// Clearing the secret is a change like any other.
	rec := h.do(http.MethodPatch, "/v1/webhooks/id-0001", "", `{"secret":""}`)
	mustStatus(t, rec, http.StatusOK)
	if decodeBody[schemas.PublicWebhook](t, rec).HasSecret {
		t.Error("has_secret still true after clearing it")
	}
}

func TestCreateWebhookRefusesBadInput(t *testing.T) {
	tests := []struct {
		name, body, code, field string
	}{
		{"missing name", `{"url":"https://example.com"}`, codeInvalid, "name"},
		{"blank name", `{"name":"  ","url":"https://example.com"}`, codeInvalid, "name"},
		{"missing url", `{"name":"a"}`, codeInvalid, "url"},
		{"ftp url", `{"name":"a","url":"ftp://example.com/x"}`, codeInvalid, "url"},
		{"url without host", `{"name":"a","url":"https:///x"}`, codeInvalid, "url"},
		{"bad events pattern", `{"name":"a","url":"https://example.com","events":["ticket"]}`, codeInvalid, "events[0]"},
		{"wildcard in the middle", `{"name":"a","url":"https://example.com","events":["*","tic*.created"]}`, codeInvalid, "events[1]"},
		{"empty events", `{"name":"a","url":"https://example.com","events":[]}`, codeInvalid, "events"},
		{"bad content type", `{"name":"a","url":"https://example.com","content_type":"text/xml"}`, codeInvalid, "content_type"},
		{"reserved header", `{"name":"a","url":"https://example.com","headers":{"Webhook-Signature":"x"}}`, codeInvalid, "headers"},
		{"unknown field", `{"name":"a","url":"https://example.com","nmae":"typo"}`, codeInvalid, "nmae"},
		{"id is not writable", `{"name":"a","url":"https://example.com","id":"mine"}`, codeInvalid, "id"},
		{"condition that does not compile", `{"name":"a","url":"https://example.com","condition":"data.priority == "}`, codeInvalid, "condition"},
		{"unknown batching mode", `{"name":"a","url":"https://example.com","batching":{"mode":"hourly"}}`, codeInvalid, "batching.mode"},
		{"wrong type", `{"name":"a","url":"https://example.com","enabled":"yes"}`, codeInvalid, "enabled"},
		{"retries out of range", `{"name":"a","url":"https://example.com","retries":-1}`, codeInvalid, "retries"},
		{"malformed JSON", `{"name":"a",`, codeBadJSON, ""},
		{"syntax error", `{"name" "a"}`, codeBadJSON, ""},
		{"trailing data", `{"name":"a","url":"https://example.com"} {}`, codeBadJSON, ""},
		{"array body", `[{"name":"a","url":"https://example.com"}]`, codeBadJSON, ""},
		{"null body", `null`, codeBadJSON, ""},
		{"empty body", ``, codeBadJSON, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, Config{}, nil)
			wantError(t, h.do(http.MethodPost, "/v1/webhooks", "", tc.body), http.StatusBadRequest, tc.code, tc.field)
			if evs := h.hooks.events(); len(evs) != 0 {
				t.Errorf("published %d changes for a refused request", len(evs))
			}
		})
	}
}

func TestUpdateWebhook(t *testing.T) {
	t.Run("invalid change is refused and nothing changes", func(t *testing.T) {
		h := newHarness(t, Config{}, nil)
		createWebhook(t, h, "", validWebhook)
		wantError(t, h.do(http.MethodPatch, "/v1/webhooks/id-0001", "", `{"url":"ftp://x"}`), http.StatusBadRequest, codeInvalid, "url")
		wantError(t, h.do(http.MethodPatch, "/v1/webhooks/id-0001", "", `{"fields":["a..b"]}`), http.StatusBadRequest, codeInvalid, "fields[0]")
		wantError(t, h.do(http.MethodPatch, "/v1/webhooks/id-0001", "", `{"tenant":"other"}`), http.StatusBadRequest, codeInvalid, "tenant")
		if evs := h.hooks.events(); len(evs) != 1 {
			t.Errorf("published %d changes, want only the create", len(evs))
		}
		got := decodeBody[schemas.PublicWebhook](t, h.do(http.MethodGet, "/v1/webhooks/id-0001", "", ""))
		if got.URL != "https://example.com/hook" {
			t.Errorf("url changed to %q", got.URL)
		}
	})
	t.Run("unknown webhook is 404", func(t *testing.T) {
		h := newHarness(t, Config{}, nil)
		wantError(t, h.do(http.MethodPatch, "/v1/webhooks/nope", "", `{"enabled":false}`), http.StatusNotFound, codeNotFound, "")
	})
	t.Run("a change that changes nothing publishes nothing", func(t *testing.T) {
		h := newHarness(t, Config{}, nil)
		created := createWebhook(t, h, "", validWebhook)
		rec := h.do(http.MethodPatch, "/v1/webhooks/id-0001", "", `{"name":"crm","enabled":true}`)
		mustStatus(t, rec, http.StatusOK)
		if got := decodeBody[schemas.PublicWebhook](t, rec); !got.UpdatedAt.Equal(created.UpdatedAt) {
			t.Errorf("updated_at moved for a no-op: %v", got.UpdatedAt)
		}
		if evs := h.hooks.events(); len(evs) != 1 {
			t.Errorf("published %d changes, want only the create", len(evs))
		}
	})
	t.Run("concurrent updates each get their own version", func(t *testing.T) {
		h := newHarness(t, Config{}, nil)
		createWebhook(t, h, "", validWebhook)
		const n = 20
		var wg sync.WaitGroup
		for i := range n {
			wg.Add(1)
			go func() {
				defer wg.Done()
				rec := h.do(http.MethodPatch, "/v1/webhooks/id-0001", "", fmt.Sprintf(`{"name":"name-%d"}`, i))
				if rec.Code != http.StatusOK {
					t.Errorf("status %d", rec.Code)
				}
			}()
		}
		wg.Wait()
		evs := h.hooks.events()
		for i, ev := range evs {
			if ev.Webhook.Version != int64(i+1) {
				t.Fatalf("change %d has version %d: an update was lost", i, ev.Webhook.Version)
			}
		}
		if len(evs) != n+1 {
			t.Errorf("published %d changes, want %d", len(evs), n+1)
		}
	})
}

func TestWebhookWritesAnswer503WhenPublishingFails(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	createWebhook(t, h, "", validWebhook)
	h.hooks.setErr(errors.New("broker down at 10.0.0.1:9092"))
	for _, req := range []struct{ method, path, body string }{
		{http.MethodPost, "/v1/webhooks", validWebhook},
		{http.MethodPatch, "/v1/webhooks/id-0001", `{"enabled":false}`},
		{http.MethodDelete, "/v1/webhooks/id-0001", ""},
	} {
		rec := h.do(req.method, req.path, "", req.body)
		e := wantError(t, rec, http.StatusServiceUnavailable, codeUnavailable, "")
		if strings.Contains(e.Message, "10.0.0.1") {
			t.Errorf("%s %s leaks the dependency's error: %q", req.method, req.path, e.Message)
		}
	}
}

// seedWebhooks creates webhooks with the given bodies and returns their ids.
func seedWebhooks(t *testing.T, h *harness, token string, bodies ...string) []string {
	t.Helper()
	ids := make([]string, len(bodies))
	for i, b := range bodies {
		ids[i] = createWebhook(t, h, token, b).ID
	}
	return ids
}

func listNames(t *testing.T, h *harness, query string) []string {
	t.Helper()
	rec := h.do(http.MethodGet, "/v1/webhooks?"+query, "", "")
	mustStatus(t, rec, http.StatusOK)
	var names []string
	for _, w := range decodeBody[list[schemas.PublicWebhook]](t, rec).Data {
		names = append(names, w.Name)
	}
	return names
}

func TestListWebhooksFilters(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	seedWebhooks(t, h, "",
		`{"name":"all","url":"https://a.example"}`,
		`{"name":"tickets","url":"https://b.example","events":["ticket.*"]}`,
		`{"name":"ticket-created","url":"https://c.example","events":["ticket.created"]}`,
		`{"name":"orders-off","url":"https://d.example","events":["order.paid"],"enabled":false}`,
		`{"name":"shop","url":"https://e.example","events":["shop.updated","order.scanned"]}`,
	)
	tests := []struct {
		name, query string
		want        []string
	}{
		{"no filter", "", []string{"all", "tickets", "ticket-created", "orders-off", "shop"}},
		{"one name", "name=shop", []string{"shop"}},
		{"any of the names", "name=shop,all,missing", []string{"all", "shop"}},
		{"repeated name", "name=shop&name=tickets", []string{"tickets", "shop"}},
		{"enabled", "enabled=true", []string{"all", "tickets", "ticket-created", "shop"}},
		{"disabled", "enabled=false", []string{"orders-off"}},
		{"event type", "event=ticket.created", []string{"all", "tickets", "ticket-created"}},
		{"event type only a wildcard takes", "event=ticket.deleted", []string{"all", "tickets"}},
		{"resource", "resource=order", []string{"all", "orders-off", "shop"}},
		{"resource and enabled", "resource=order&enabled=true", []string{"all", "shop"}},
		{"nothing matches", "name=nobody", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := listNames(t, h, tc.query); !slices.Equal(got, tc.want) {
				t.Errorf("?%s = %v, want %v", tc.query, got, tc.want)
			}
		})
	}
	rec := h.do(http.MethodGet, "/v1/webhooks?name=nobody", "", "")
	if !strings.Contains(rec.Body.String(), `"data":[]`) {
		t.Errorf("empty list is not an empty array: %s", rec.Body.String())
	}

	bad := []struct{ name, query, field string }{
		{"enabled not a boolean", "enabled=yes", "enabled"},
		{"limit zero", "limit=0", "limit"},
		{"limit too big", "limit=501", "limit"},
		{"limit not a number", "limit=ten", "limit"},
		{"unknown parameter", "nmae=x", "nmae"},
		{"repeated limit", "limit=1&limit=2", "limit"},
		{"event with wildcard", "event=ticket.*", "event"},
		{"event without trigger", "event=ticket", "event"},
		{"resource with dot", "resource=ticket.created", "resource"},
		{"empty name", "name=,", "name"},
		{"forged cursor", "cursor=***", "cursor"},
		{"garbage cursor", "cursor=garbage", "cursor"},
		{"base64 that is no cursor", "cursor=" + base64.RawURLEncoding.EncodeToString([]byte("id-0001")), "cursor"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, h.do(http.MethodGet, "/v1/webhooks?"+tc.query, "", ""), http.StatusBadRequest, codeInvalid, tc.field)
		})
	}
}

// pageAll follows next_cursor to the end and returns every id in order.
func pageAll(t *testing.T, h *harness, query string, onPage func(page int)) (ids []string, pages int) {
	t.Helper()
	cursor := ""
	for {
		q := query
		if cursor != "" {
			q += "&cursor=" + url.QueryEscape(cursor)
		}
		rec := h.do(http.MethodGet, "/v1/webhooks?"+q, "", "")
		mustStatus(t, rec, http.StatusOK)
		l := decodeBody[list[schemas.PublicWebhook]](t, rec)
		pages++
		for _, w := range l.Data {
			ids = append(ids, w.ID)
		}
		if onPage != nil {
			onPage(pages)
		}
		if l.NextCursor == "" {
			if strings.Contains(rec.Body.String(), "next_cursor") {
				t.Errorf("last page carries next_cursor: %s", rec.Body.String())
			}
			return ids, pages
		}
		if pages > 100 {
			t.Fatal("pagination does not end")
		}
		cursor = l.NextCursor
	}
}

func TestListWebhooksPaginatesWithoutSkipOrRepeat(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	var bodies []string
	for i := range 7 {
		bodies = append(bodies, fmt.Sprintf(`{"name":"w%d","url":"https://example.com/%d","enabled":%t}`, i, i, i%2 == 0))
	}
	all := seedWebhooks(t, h, "", bodies...)

	ids, pages := pageAll(t, h, "limit=3", nil)
	if !slices.Equal(ids, all) || pages != 3 {
		t.Errorf("paged %v in %d pages, want %v in 3", ids, pages, all)
	}

	ids, pages = pageAll(t, h, "limit=7", nil)
	if !slices.Equal(ids, all) || pages != 1 {
		t.Errorf("exact page: %v in %d pages", ids, pages)
	}

	ids, _ = pageAll(t, h, "limit=2&enabled=true", nil)
	if want := []string{all[0], all[2], all[4], all[6]}; !slices.Equal(ids, want) {
		t.Errorf("filtered pages %v, want %v", ids, want)
	}

	// A webhook deleted and one created between pages shift nothing: every
	// other one after the cursor is seen once.
	ids, _ = pageAll(t, h, "limit=3", func(page int) {
		if page == 1 {
			mustStatus(t, h.do(http.MethodDelete, "/v1/webhooks/"+all[4], "", ""), http.StatusNoContent)
			createWebhook(t, h, "", `{"name":"late","url":"https://example.com/late"}`)
		}
	})
	want := append(slices.Delete(slices.Clone(all), 4, 5), "id-0008")
	if !slices.Equal(ids, want) {
		t.Errorf("paged %v while changing, want %v", ids, want)
	}
}

func TestWebhookShowsBreakerState(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	rec := h.do("POST", "/v1/webhooks", "", `{"name":"n","url":"https://example.com/h"}`)
	mustStatus(t, rec, http.StatusCreated)
	created := decodeBody[map[string]any](t, rec)
	rec = h.do("GET", "/v1/webhooks/"+created["id"].(string), "", "")
	mustStatus(t, rec, http.StatusOK)
	if got := decodeBody[map[string]any](t, rec)["breaker_state"]; got != "open" {
		t.Fatalf("breaker_state = %v, want open", got)
	}
}

// TestConcurrentPatchesAreAllKept: PATCHes of different fields at once,
// each answered 200, are all in the final webhook: a change made from a
// version that another change replaced is made again from the new one.
func TestConcurrentPatchesAreAllKept(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	patches := []string{`{"name":"renamed"}`, `{"timeout_ms":2500}`, `{"retries":2}`, `{"enabled":false}`,
		`{"content_type":"application/x-www-form-urlencoded"}`, `{"rate_limit":7}`, `{"max_concurrency":3}`}
	for round := range 10 {
		created := createWebhook(t, h, "", validWebhook)
		var wg sync.WaitGroup
		for _, p := range patches {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if rec := h.do(http.MethodPatch, "/v1/webhooks/"+created.ID, "", p); rec.Code != http.StatusOK {
					t.Errorf("round %d: PATCH %s: %d %s", round, p, rec.Code, rec.Body)
				}
			}()
		}
		wg.Wait()
		got, _ := h.hooks.Webhook(schemas.DefaultTenant, created.ID)
		if got.Name != "renamed" || got.TimeoutMS != 2500 || got.Retries != 2 || got.Enabled ||
			got.ContentType != schemas.ContentTypeForm || got.RateLimit != 7 || got.MaxConcurrency != 3 || got.Version != 1+int64(len(patches)) {
			t.Fatalf("round %d: final %+v; want every PATCH kept, version %d", round, got, 1+len(patches))
		}
	}
}

// TestAPatchThatKeepsLosingIs409: a webhook that another writer changes
// before every try of a PATCH: the PATCH gives up with a 409, changing
// nothing.
func TestAPatchThatKeepsLosingIs409(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	created := createWebhook(t, h, "", validWebhook)
	h.hooks.setErr(fmt.Errorf("another process wrote first: %w", schemas.ErrVersionConflict))
	wantError(t, h.do(http.MethodPatch, "/v1/webhooks/"+created.ID, "", `{"name":"x"}`), http.StatusConflict, codeConflict, "")
	h.hooks.setErr(nil)
	if got, _ := h.hooks.Webhook(schemas.DefaultTenant, created.ID); got.Name != "crm" {
		t.Fatalf("name %q after a refused PATCH", got.Name)
	}
}

// TestIfMatchKeepsAStaleChangeFromOverwritingANewerOne: a webhook's ETag is
// its version; a PATCH or DELETE with If-Match of an older version gets
// 412 and changes nothing (before, If-Match was ignored and a client's
// PATCH silently overwrote a change it had not seen); with the current
// one, or "*", or none, it goes through.
func TestIfMatchKeepsAStaleChangeFromOverwritingANewerOne(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	created := createWebhook(t, h, "", validWebhook)
	path := "/v1/webhooks/" + created.ID
	read := h.do(http.MethodGet, path, "", "")
	mustStatus(t, read, http.StatusOK)
	seen := read.Header().Get("ETag")
	if wh, _ := h.hooks.Webhook(schemas.DefaultTenant, created.ID); seen != fmt.Sprintf(`"%d"`, wh.Version) {
		t.Fatalf("ETag %q, want the version %d quoted", seen, wh.Version)
	}
	withIfMatch := func(method, body, tag string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Host = "127.0.0.1:8080"
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("If-Match", tag)
		rec := httptest.NewRecorder()
		h.handler.ServeHTTP(rec, req)
		return rec
	}
	// Another client changes the webhook first.
	newer := h.do(http.MethodPatch, path, "", `{"name":"crm-2"}`)
	mustStatus(t, newer, http.StatusOK)
	if tag := newer.Header().Get("ETag"); tag == seen || tag == "" {
		t.Fatalf("ETag after a change %q (before %q)", tag, seen)
	}
	wantError(t, withIfMatch(http.MethodPatch, `{"name":"stale"}`, seen), http.StatusPreconditionFailed, codePreconditionFailed, "")
	wantError(t, withIfMatch(http.MethodDelete, "", seen), http.StatusPreconditionFailed, codePreconditionFailed, "")
	if got := decodeBody[schemas.PublicWebhook](t, h.do(http.MethodGet, path, "", "")); got.Name != "crm-2" {
		t.Fatalf("after refused stale changes the name is %q, want crm-2", got.Name)
	}
	current := newer.Header().Get("ETag")
	mustStatus(t, withIfMatch(http.MethodPatch, `{"name":"crm-3"}`, `"999", `+current), http.StatusOK)
	mustStatus(t, withIfMatch(http.MethodPatch, `{"name":"crm-4"}`, "*"), http.StatusOK)
	latest := h.do(http.MethodGet, path, "", "").Header().Get("ETag")
	mustStatus(t, withIfMatch(http.MethodDelete, "", latest), http.StatusNoContent)
}

// TestASecretThatLooksSealedIsRefused: a secret or credential beginning
// with the sealed-value mark would be stored on hookline.subscriptions as
// if sealed and could not be opened again (the webhook would vanish when
// read back): 400, nothing written.
func TestASecretThatLooksSealedIsRefused(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	for _, tc := range []struct{ body, field string }{
		{`{"name":"a","url":"https://example.com/h","secret":"` + schemas.SealedPrefix + `abc","events":["ticket.*"]}`, "secret"},
		{`{"name":"a","url":"https://example.com/h","events":["ticket.*"],"auth":{"type":"bearer","token":"` + schemas.SealedPrefix + `x"}}`, "auth"},
	} {
		wantError(t, h.do(http.MethodPost, "/v1/webhooks", "", tc.body), http.StatusBadRequest, codeInvalid, tc.field)
	}
	if n := len(h.hooks.events()); n != 0 {
		t.Fatalf("%d webhooks written", n)
	}
	if sealing.Marker != schemas.SealedPrefix || !strings.HasPrefix(sealing.Prefix, sealing.Marker) || !strings.HasPrefix(sealing.PrefixBound, sealing.Marker) {
		t.Fatalf("schemas.SealedPrefix %q is not sealing's marker %q", schemas.SealedPrefix, sealing.Marker)
	}
}

// unreadableHooks is fake webhooks of which some cannot be read.
type unreadableHooks struct {
	*fakeWebhooks
	bad map[string]string
}

func (u unreadableHooks) Unreadable(id string) (string, bool) {
	why, bad := u.bad[id]
	return why, bad
}

// TestAnUnreadableWebhookIsUnavailableNotGone: a webhook whose latest
// change this process cannot read (another --secrets-key) answers 503
// saying so, not 404 as if it were deleted, nor its stale state.
func TestAnUnreadableWebhookIsUnavailableNotGone(t *testing.T) {
	h := newHarness(t, Config{}, nil)
	created := createWebhook(t, h, "", validWebhook)
	srv, err := New(Config{}, Deps{Webhooks: unreadableHooks{h.hooks, map[string]string{created.ID: "its secrets do not open with --secrets-key"}},
		Events: &fakeEvents{}, Deliveries: newFakeDeliveries(), Jobs: &fakeJobs{}}, nil)
	if err != nil {
		t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodGet, "/v1/webhooks/"+created.ID, nil)
	req.Host = "127.0.0.1:8080"
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, req)
	e := wantError(t, rec, http.StatusServiceUnavailable, codeUnavailable, "")
	if !strings.Contains(e.Message, "--secrets-key") {
		t.Fatalf("message %q does not say why", e.Message)
	}
}
