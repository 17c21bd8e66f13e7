package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hookline/hookline/schemas"
)

// fakeReplays keeps replays in memory. Like the manager, it refuses
// offsets of partitions hookline.events does not have.
type fakeReplays struct {
	mu         sync.Mutex
	byID       map[string]schemas.Replay
	created    []schemas.ReplayRequest
	partitions int
	n          int
	err        error // returned by CreateReplay and CancelReplay when set
}

func newFakeReplays() *fakeReplays {
	return &fakeReplays{byID: map[string]schemas.Replay{}, partitions: 6}
}

func (f *fakeReplays) CreateReplay(_ context.Context, tenant string, req schemas.ReplayRequest) (schemas.Replay, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return schemas.Replay{}, f.err
	}
	for field, pos := range map[string]*schemas.ReplayPosition{"from": req.From, "to": req.To} {
		if pos == nil {
			continue
		}
		for k := range pos.Offsets {
			if p, _ := strconv.Atoi(k); p >= f.partitions {
				return schemas.Replay{}, &schemas.FieldError{Field: field + ".offsets." + k, Message: "no such partition"}
			}
		}
	}
	f.created = append(f.created, req)
	f.n++
	r := schemas.Replay{
		ID: fmt.Sprintf("replay-%d", f.n), Tenant: tenant, WebhookIDs: req.WebhookIDs, From: *req.From, To: req.To,
		DryRun: req.DryRun, State: schemas.ReplayRunning,
		Partitions: []schemas.ReplayPartition{{Partition: 0, Start: 3, End: 10, Next: 3}},
		CreatedAt:  t0.In(time.FixedZone("CET", 3600)), UpdatedAt: t0, Version: 1,
	}
	f.byID[r.ID] = r
	return r, nil
}

func (f *fakeReplays) Replay(tenant, id string) (schemas.Replay, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.byID[id]
	if !ok || r.Tenant != tenant {
		return schemas.Replay{}, false
	}
	return r, true
}

func (f *fakeReplays) CancelReplay(_ context.Context, tenant, id string) (schemas.Replay, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.byID[id]
	switch {
	case !ok || r.Tenant != tenant:
		return schemas.Replay{}, schemas.ErrReplayNotFound
	case f.err != nil:
		return schemas.Replay{}, f.err
	case r.Finished():
		return schemas.Replay{}, schemas.ErrReplayFinished
	}
	r.State = schemas.ReplayCancelled
	r.Version++
	f.byID[id] = r
	return r, nil
}

func (f *fakeReplays) Replays(tenant string) []schemas.Replay {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []schemas.Replay
	for _, r := range f.byID {
		if r.Tenant == tenant {
			out = append(out, r)
		}
	}
	schemas.SortReplays(out)
	return out
}

func (f *fakeReplays) add(r schemas.Replay) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.byID[r.ID] = r
}

func (f *fakeReplays) requests() []schemas.ReplayRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]schemas.ReplayRequest(nil), f.created...)
}

// newReplayHarness is newHarness with replays, two tenants (tok-acme,
// tok-globex) and one webhook for each.
func newReplayHarness(t *testing.T) (h *harness, replays *fakeReplays, acmeHook, globexHook string) {
	t.Helper()
	h = &harness{t: t, hooks: newFakeWebhooks(), events: &fakeEvents{}, dels: newFakeDeliveries(), jobs: &fakeJobs{}}
	replays = newFakeReplays()
	var mu sync.Mutex
	n := 0
	srv, err := New(twoTenants, Deps{
		Webhooks: h.hooks, Events: h.events, Deliveries: h.dels, Jobs: h.jobs, Replays: replays,
		NewID: func() string {
			mu.Lock()
			defer mu.Unlock()
			n++
			return fmt.Sprintf("id-%04d", n)
		},
	}, nil)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	h.handler = srv.Handler()
	acmeHook = createWebhook(t, h, "tok-acme", validWebhook).ID
	globexHook = createWebhook(t, h, "tok-globex", validWebhook).ID
	return h, replays, acmeHook, globexHook
}

func TestCreateReplayAnswers202WithTheReplay(t *testing.T) {
	h, replays, hook, _ := newReplayHarness(t)
	rec := h.do(http.MethodPost, "/v1/replays", "tok-acme", `{"webhook_ids":["`+hook+`"],
		"from":{"time":"2026-11-22T01:00:00+01:00"},"to":{"time":"2026-11-22T12:00:00Z"},"dry_run":true}`)
	mustStatus(t, rec, http.StatusAccepted)
	got := decodeBody[schemas.PublicReplay](t, rec)
	if got.ID == "" || rec.Header().Get("Location") != "/v1/replays/"+got.ID {
		t.Errorf("id %q, Location %q", got.ID, rec.Header().Get("Location"))
	}
	if got.State != schemas.ReplayRunning || !got.DryRun || len(got.WebhookIDs) != 1 || got.WebhookIDs[0] != hook {
		t.Errorf("replay %+v", got)
	}
	if got.From.Time == nil || !got.From.Time.Equal(time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC)) || got.To == nil || got.To.Time == nil {
		t.Errorf("from %+v to %+v", got.From, got.To)
	}
	for _, ts := range []string{`"time":"2026-11-22T00:00:00Z"`, `"created_at":"2026-11-22T10:00:00Z"`} {
		if !strings.Contains(rec.Body.String(), ts) {
			t.Errorf("the answer lacks %s (times in UTC): %s", ts, rec.Body.String())
		}
	}
	if len(got.Partitions) != 1 || got.Partitions[0].End != 10 {
		t.Errorf("partitions %+v", got.Partitions)
	}
	reqs := replays.requests()
	if len(reqs) != 1 || reqs[0].From.Time == nil || reqs[0].To == nil || !reqs[0].DryRun {
		t.Fatalf("requests passed on: %+v", reqs)
	}

	rec = h.do(http.MethodGet, "/v1/replays/"+got.ID, "tok-acme", "")
	mustStatus(t, rec, http.StatusOK)
	if again := decodeBody[schemas.PublicReplay](t, rec); again.ID != got.ID || again.State != schemas.ReplayRunning {
		t.Errorf("GET answered %+v", again)
	}
}

func TestCreateReplayFromOffsetsWithoutTo(t *testing.T) {
	h, replays, hook, _ := newReplayHarness(t)
	rec := h.do(http.MethodPost, "/v1/replays", "tok-acme", `{"webhook_ids":["`+hook+`"],"from":{"offsets":{"0":1200,"5":0}},"to":null}`)
	mustStatus(t, rec, http.StatusAccepted)
	got := decodeBody[schemas.PublicReplay](t, rec)
	if got.From.Offsets["0"] != 1200 || got.From.Time != nil || got.To != nil || got.DryRun {
		t.Errorf("replay %+v", got)
	}
	if strings.Contains(rec.Body.String(), `"to"`) {
		t.Errorf("no to was given, but the answer has one: %s", rec.Body.String())
	}
	if reqs := replays.requests(); len(reqs) != 1 || reqs[0].To != nil || len(reqs[0].From.Offsets) != 2 {
		t.Errorf("requests passed on: %+v", reqs)
	}
}

func TestCreateReplayRefusesBadInput(t *testing.T) {
	h, replays, hook, globexHook := newReplayHarness(t)
	ids := func(list ...string) string { return `"webhook_ids":["` + strings.Join(list, `","`) + `"]` }
	many := make([]string, 101)
	for i := range many {
		many[i] = hook
	}
	from := `"from":{"time":"2026-11-22T00:00:00Z"}`
	tests := []struct {
		name, body, code, field string
	}{
		{"malformed JSON", `{"webhook_ids":`, codeBadJSON, ""},
		{"no webhook ids", `{` + from + `}`, codeInvalid, "webhook_ids"},
		{"empty webhook ids", `{"webhook_ids":[],` + from + `}`, codeInvalid, "webhook_ids"},
		{"more than 100 webhook ids", `{` + ids(many...) + `,` + from + `}`, codeInvalid, "webhook_ids"},
		{"webhook ids not an array", `{"webhook_ids":"x",` + from + `}`, codeInvalid, "webhook_ids"},
		{"unknown webhook", `{` + ids(hook, "nope") + `,` + from + `}`, codeInvalid, "webhook_ids[1]"},
		{"another tenant's webhook", `{` + ids(globexHook) + `,` + from + `}`, codeInvalid, "webhook_ids[0]"},
		{"a webhook twice", `{` + ids(hook, hook) + `,` + from + `}`, codeInvalid, "webhook_ids[1]"},
		{"no from", `{` + ids(hook) + `}`, codeInvalid, "from"},
		{"from neither time nor offsets", `{` + ids(hook) + `,"from":{}}`, codeInvalid, "from"},
		{"from both time and offsets", `{` + ids(hook) + `,"from":{"time":"2026-11-22T00:00:00Z","offsets":{"0":1}}}`, codeInvalid, "from"},
		{"from not an object", `{` + ids(hook) + `,"from":"yesterday"}`, codeInvalid, "from"},
		{"from time not RFC 3339", `{` + ids(hook) + `,"from":{"time":"22/11/2026"}}`, codeInvalid, "from.time"},
		{"from unknown field", `{` + ids(hook) + `,"from":{"at":"2026-11-22T00:00:00Z"}}`, codeInvalid, "from.at"},
		{"negative offset", `{` + ids(hook) + `,"from":{"offsets":{"0":-1}}}`, codeInvalid, "from.offsets.0"},
		{"offsets empty", `{` + ids(hook) + `,"from":{"offsets":{}}}`, codeInvalid, "from.offsets"},
		{"partition not a number", `{` + ids(hook) + `,"from":{"offsets":{"x":1}}}`, codeInvalid, "from.offsets.x"},
		{"unknown partition", `{` + ids(hook) + `,"from":{"offsets":{"7":1}}}`, codeInvalid, "from.offsets.7"},
		{"to before from", `{` + ids(hook) + `,` + from + `,"to":{"time":"2026-11-21T00:00:00Z"}}`, codeInvalid, "to.time"},
		{"to equal to from", `{` + ids(hook) + `,` + from + `,"to":{"time":"2026-11-22T00:00:00Z"}}`, codeInvalid, "to.time"},
		{"to offsets before from offsets", `{` + ids(hook) + `,"from":{"offsets":{"0":10}},"to":{"offsets":{"0":9}}}`, codeInvalid, "to.offsets.0"},
		{"to offsets of a partition from leaves out", `{` + ids(hook) + `,"from":{"offsets":{"0":10}},"to":{"offsets":{"1":20}}}`, codeInvalid, "to.offsets.1"},
		{"to both", `{` + ids(hook) + `,` + from + `,"to":{"time":"2026-11-23T00:00:00Z","offsets":{"0":1}}}`, codeInvalid, "to"},
		{"to unknown partition", `{` + ids(hook) + `,` + from + `,"to":{"offsets":{"6":1}}}`, codeInvalid, "to.offsets.6"},
		{"dry run not a boolean", `{` + ids(hook) + `,` + from + `,"dry_run":"yes"}`, codeInvalid, "dry_run"},
		{"unknown field", `{` + ids(hook) + `,` + from + `,"speed":2}`, codeInvalid, "speed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			wantError(t, h.do(http.MethodPost, "/v1/replays", "tok-acme", tc.body), http.StatusBadRequest, tc.code, tc.field)
		})
	}
	if reqs := replays.requests(); len(reqs) != 0 {
		t.Errorf("refused requests were started: %+v", reqs)
	}
}

func TestReplaysOfAnotherTenantAreNotFound(t *testing.T) {
	h, _, hook, _ := newReplayHarness(t)
	rec := h.do(http.MethodPost, "/v1/replays", "tok-acme", `{"webhook_ids":["`+hook+`"],"from":{"offsets":{"0":0}}}`)
	mustStatus(t, rec, http.StatusAccepted)
	id := decodeBody[schemas.PublicReplay](t, rec).ID

	wantError(t, h.do(http.MethodGet, "/v1/replays/"+id, "tok-globex", ""), http.StatusNotFound, codeNotFound, "")
	wantError(t, h.do(http.MethodDelete, "/v1/replays/"+id, "tok-globex", ""), http.StatusNotFound, codeNotFound, "")
	wantError(t, h.do(http.MethodGet, "/v1/replays/nope", "tok-acme", ""), http.StatusNotFound, codeNotFound, "")
	rec = h.do(http.MethodGet, "/v1/replays/"+id, "tok-acme", "")
	mustStatus(t, rec, http.StatusOK)
	if got := decodeBody[schemas.PublicReplay](t, rec); got.State != schemas.ReplayRunning {
		t.Errorf("globex's cancel reached acme's replay: %+v", got)
	}
}

func TestCancelReplay(t *testing.T) {
	h, replays, hook, _ := newReplayHarness(t)
	rec := h.do(http.MethodPost, "/v1/replays", "tok-acme", `{"webhook_ids":["`+hook+`"],"from":{"offsets":{"0":0}}}`)
	mustStatus(t, rec, http.StatusAccepted)
	id := decodeBody[schemas.PublicReplay](t, rec).ID

	rec = h.do(http.MethodDelete, "/v1/replays/"+id, "tok-acme", "")
	mustStatus(t, rec, http.StatusAccepted)
	if got := decodeBody[schemas.PublicReplay](t, rec); got.ID != id || got.State != schemas.ReplayCancelled {
		t.Errorf("cancel answered %+v", got)
	}
	e := wantError(t, h.do(http.MethodDelete, "/v1/replays/"+id, "tok-acme", ""), http.StatusConflict, codeConflict, "")
	if !strings.Contains(e.Message, "cancelled") {
		t.Errorf("the conflict does not say the replay's state: %q", e.Message)
	}

	replays.add(schemas.Replay{ID: "done-1", Tenant: "acme", State: schemas.ReplayDone})
	e = wantError(t, h.do(http.MethodDelete, "/v1/replays/done-1", "tok-acme", ""), http.StatusConflict, codeConflict, "")
	if !strings.Contains(e.Message, "done") {
		t.Errorf("the conflict does not say the replay's state: %q", e.Message)
	}
}

func TestReplayWritesAnswer503WhenTheBrokerFails(t *testing.T) {
	h, replays, hook, _ := newReplayHarness(t)
	replays.add(schemas.Replay{ID: "run-1", Tenant: "acme", State: schemas.ReplayRunning})
	replays.mu.Lock()
	replays.err = errors.New("broker down")
	replays.mu.Unlock()
	wantError(t, h.do(http.MethodPost, "/v1/replays", "tok-acme", `{"webhook_ids":["`+hook+`"],"from":{"offsets":{"0":0}}}`),
		http.StatusServiceUnavailable, codeUnavailable, "")
	wantError(t, h.do(http.MethodDelete, "/v1/replays/run-1", "tok-acme", ""), http.StatusServiceUnavailable, codeUnavailable, "")
}

func TestReplaysAnswer501WithoutReplays(t *testing.T) {
	h := newHarness(t, twoTenants, nil)
	for _, method := range []string{http.MethodGet, http.MethodDelete} {
		wantError(t, h.do(method, "/v1/replays/r1", "tok-acme", ""), http.StatusNotImplemented, codeNotImplemented, "")
	}
}

// TestListReplays: GET /v1/replays answers the tenant's replays newest
// first, a page at a time, filtered by state; another tenant's never show.
func TestListReplays(t *testing.T) {
	h, replays, _, _ := newReplayHarness(t)
	for i := range 5 {
		state := schemas.ReplayDone
		if i%2 == 0 {
			state = schemas.ReplayRunning
		}
		replays.add(schemas.Replay{ID: fmt.Sprintf("rp-%d", i), Tenant: "acme", State: state, CreatedAt: t0.Add(time.Duration(i) * time.Minute)})
	}
	replays.add(schemas.Replay{ID: "rp-globex", Tenant: "globex", State: schemas.ReplayRunning, CreatedAt: t0})

	var ids []string
	cursor := ""
	for page := 0; page < 5; page++ {
		path := "/v1/replays?limit=2"
		if cursor != "" {
			path += "&cursor=" + cursor
		}
		rec := h.do(http.MethodGet, path, "tok-acme", "")
		mustStatus(t, rec, http.StatusOK)
		l := decodeBody[list[schemas.PublicReplay]](t, rec)
		for _, r := range l.Data {
			ids = append(ids, r.ID)
		}
		if cursor = l.NextCursor; cursor == "" {
			break
		}
	}
	if got := strings.Join(ids, ","); got != "rp-4,rp-3,rp-2,rp-1,rp-0" {
		t.Fatalf("pages gave %s, want acme's five newest first", got)
	}
	l := decodeBody[list[schemas.PublicReplay]](t, h.do(http.MethodGet, "/v1/replays?state=running", "tok-acme", ""))
	if len(l.Data) != 3 {
		t.Fatalf("%d running replays, want 3", len(l.Data))
	}
	for _, bad := range []string{"state=paused", "limit=0", "cursor=garbage"} {
		if rec := h.do(http.MethodGet, "/v1/replays?"+bad, "tok-acme", ""); rec.Code != http.StatusBadRequest {
			t.Errorf("?%s: %d, want 400", bad, rec.Code)
		}
	}
}
