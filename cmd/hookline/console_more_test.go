package main

// More flows of the admin console in a headless Chromium, with the helpers
// of console_test.go: editing a webhook (its form prefilled, credentials
// kept when left empty), rotating its secret, the grid's enabled switch and
// filters, the webhook page's test event, redelivery of the failed ones and
// delivery filters, a replay that delivers, and the create form's refusals
// and unsigned webhooks.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hookline/hookline/client"
	"github.com/hookline/hookline/schemas"
	"github.com/hookline/hookline/signing"
)

// value is the value of the form field sel, which must exist.
func (b *consoleBrowser) value(sel string) string {
	b.t.Helper()
	b.present(sel)
	return evalJS[string](b, fmt.Sprintf(`String(document.querySelector(%s).value)`, js(sel)))
}

// checked tells whether the checkbox or radio sel, which must exist, is
// checked.
func (b *consoleBrowser) checked(sel string) bool {
	b.t.Helper()
	b.present(sel)
	return evalJS[bool](b, fmt.Sprintf(`!!document.querySelector(%s).checked`, js(sel)))
}

// rowIDs is the data-id of every row of table#id's body, in order.
func (b *consoleBrowser) rowIDs(table string) []string {
	b.t.Helper()
	return evalJS[[]string](b, fmt.Sprintf(`[...document.querySelectorAll(%s)].map(r => r.getAttribute("data-id"))`,
		js("table#"+table+" tbody tr[data-id]")))
}

// requestsWith is the endpoint's requests whose body contains sub.
func requestsWith(e *consoleEndpoint, sub string) []consoleRequest {
	var out []consoleRequest
	for _, r := range e.received() {
		if strings.Contains(string(r.body), sub) {
			out = append(out, r)
		}
	}
	return out
}

// webhookForm is a field of the webhook form.
func webhookForm(sel string) string { return "form#webhook-form " + sel }

// TestConsoleEditsAWebhook: the edit form shows the webhook as it is;
// a save changes the name, adds an event, basic authentication and a
// header, which the API then holds and deliveries carry; a second save
// that leaves the password empty keeps the credentials.
func TestConsoleEditsAWebhook(t *testing.T) {
	consoleTest(t)
	endpoint := newConsoleEndpoint(t)
	p := startServe(t, "--data-dir", t.TempDir())
	ctx := context.Background()
	api := p.api()
	hook, err := api.CreateWebhook(ctx, schemas.WebhookInput{Name: client.Ptr("tickets"), URL: client.Ptr(endpoint.URL + "/in"),
		Events: client.Ptr([]string{"ticket.created"}), Retries: client.Ptr(0)})
	fatalIf(t, err)
	b := newConsoleBrowser(t, p.base)

	b.open("/webhooks/"+hook.ID+"/edit", "webhook-form")
	if h1 := b.text("#main h1"); h1 != "Edit tickets" {
		b.fatalf("the edit page's h1 is %q, want %q", h1, "Edit tickets")
	}
	if got := b.value(webhookForm(`[name="name"]`)); got != "tickets" {
		b.fatalf("the name field holds %q, want tickets", got)
	}
	if got := b.value(webhookForm(`[name="url"]`)); got != endpoint.URL+"/in" {
		b.fatalf("the url field holds %q, want %s/in", got, endpoint.URL)
	}
	if !b.checked(webhookForm(`input[name="events_mode"][value="select"]`)) || b.checked(webhookForm(`input[name="events_mode"][value="all"]`)) {
		b.fatalf(`"Let me select individual events" is not the selected events mode`)
	}
	if hidden := evalJS[bool](b, `document.getElementById("event-picker").hidden`); hidden {
		b.fatalf("#event-picker is hidden although the webhook selects its events")
	}
	if !b.checked(webhookForm(`input[name="event"][value="ticket.created"]`)) {
		b.fatalf("the ticket.created checkbox is not checked")
	}
	if n := b.count(webhookForm(`input[name="event"]:checked`)); n != 1 {
		b.fatalf("%d event checkboxes are checked, want only ticket.created", n)
	}
	if got := b.value(webhookForm(`select[name="auth_type"]`)); got != "none" {
		b.fatalf("the auth type is %q, want none", got)
	}
	if got := b.value(webhookForm(`[name="retries"]`)); got != "0" {
		b.fatalf("the retries field holds %q, want 0", got)
	}

	b.fill(webhookForm(`[name="name"]`), "tickets and orders")
	b.click(webhookForm(`input[name="event"][value="order.paid"]`))
	b.fill(webhookForm(`select[name="auth_type"]`), "basic")
	b.fill(webhookForm(`input[name="auth_username"]`), "hooky")
	b.fill(webhookForm(`input[name="auth_password"]`), "s3cret-pass")
	b.fill(webhookForm(`textarea[name="headers"]`), "X-Tenant: acme")
	b.click("button#save")
	b.waitJS("the webhook's page after Save", fmt.Sprintf(`location.pathname === %s && %s`, js("/webhooks/"+hook.ID), pageReady("webhook")), consoleWait)
	if h1 := b.text("#main h1"); h1 != "tickets and orders" {
		b.fatalf("after Save the webhook page's h1 is %q, want the new name", h1)
	}
	if got := b.text("#flash"); got != "Saved." {
		b.fatalf("after Save #flash says %q, want Saved.", got)
	}
	got, err := api.Webhook(ctx, hook.ID)
	fatalIf(t, err)
	wantAuth := schemas.PublicAuth{Type: "basic", Username: "hooky", HasCredentials: true}
	if got.Name != "tickets and orders" || got.URL != endpoint.URL+"/in" || got.Retries != 0 ||
		!slices.Equal(slices.Sorted(slices.Values(got.Events)), []string{"order.paid", "ticket.created"}) ||
		got.Auth == nil || fmt.Sprint(*got.Auth) != fmt.Sprint(wantAuth) ||
		!maps.Equal(got.Headers, map[string]string{"X-Tenant": "acme"}) {
		t.Fatalf("after the edit the API holds %+v (auth %+v), want the new name, events [ticket.created order.paid], basic auth of hooky and X-Tenant: acme", got, got.Auth)
	}

	// Edited again: the form shows the auth (never the password) and the
	// header; a save that leaves the password empty keeps it.
	b.click("a#edit")
	b.waitJS("the edit page again", fmt.Sprintf(`location.pathname === %s && %s`, js("/webhooks/"+hook.ID+"/edit"), pageReady("webhook-form")), consoleWait)
	if got := b.value(webhookForm(`select[name="auth_type"]`)); got != "basic" {
		b.fatalf("the auth type shows %q after the save, want basic", got)
	}
	if got := b.value(webhookForm(`input[name="auth_username"]`)); got != "hooky" {
		b.fatalf("the username shows %q, want hooky", got)
	}
	if got := b.value(webhookForm(`input[name="auth_password"]`)); got != "" {
		b.fatalf("the password field shows %q: credentials are write-only", got)
	}
	if got := b.value(webhookForm(`textarea[name="headers"]`)); got != "X-Tenant: acme" {
		b.fatalf("the headers field shows %q, want X-Tenant: acme", got)
	}
	for _, ev := range []string{"ticket.created", "order.paid"} {
		if !b.checked(webhookForm(fmt.Sprintf(`input[name="event"][value=%q]`, ev))) {
			b.fatalf("the %s checkbox is not checked after the save", ev)
		}
	}
	b.fill(webhookForm(`[name="name"]`), "tickets and orders v2")
	b.click("button#save")
	b.waitJS("the webhook's page after the second Save", fmt.Sprintf(`location.pathname === %s && %s`, js("/webhooks/"+hook.ID), pageReady("webhook")), consoleWait)
	got, err = api.Webhook(ctx, hook.ID)
	fatalIf(t, err)
	if got.Name != "tickets and orders v2" || got.Auth == nil || fmt.Sprint(*got.Auth) != fmt.Sprint(wantAuth) ||
		!maps.Equal(got.Headers, map[string]string{"X-Tenant": "acme"}) || len(got.Events) != 2 {
		t.Fatalf("after a save without credentials the API holds %+v (auth %+v), want the name changed and the basic auth kept", got, got.Auth)
	}

	// Deliveries carry the header and the password given in the first save.
	_, err = api.PublishEvents(ctx, schemas.Event{Resource: "order", Trigger: "paid", ResourceID: "O-1"})
	fatalIf(t, err)
	waitFor(t, "the order.paid delivery at the endpoint", 30*time.Second, func() bool { return len(requestsWith(endpoint, `"O-1"`)) > 0 })
	req := requestsWith(endpoint, `"O-1"`)[0]
	if want := "Basic " + base64.StdEncoding.EncodeToString([]byte("hooky:s3cret-pass")); req.header.Get("Authorization") != want {
		t.Fatalf("the delivery's Authorization is %q, want %q (the credentials of the first save)", req.header.Get("Authorization"), want)
	}
	if got := req.header.Get("X-Tenant"); got != "acme" {
		t.Fatalf("the delivery's X-Tenant is %q, want acme", got)
	}
}

// TestConsoleRotatesTheSecret: Rotate secret on the edit page asks first,
// then shows the new secret once; deliveries carry a signature for each of
// the two secrets during the overlap.
func TestConsoleRotatesTheSecret(t *testing.T) {
	consoleTest(t)
	endpoint := newConsoleEndpoint(t)
	p := startServe(t, "--data-dir", t.TempDir())
	ctx := context.Background()
	api := p.api()
	const oldSecret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	hook, err := api.CreateWebhook(ctx, schemas.WebhookInput{Name: client.Ptr("signed"), URL: client.Ptr(endpoint.URL),
		Secret: client.Ptr(oldSecret), Events: client.Ptr([]string{"ticket.*"}), Retries: client.Ptr(0)})
	fatalIf(t, err)
	b := newConsoleBrowser(t, p.base)

	b.open("/webhooks/"+hook.ID+"/edit", "webhook-form")
	b.click("button#rotate-secret")
	b.waitJS("dialog#confirm to open", `(d => !!d && d.open)(document.querySelector("dialog#confirm"))`, consoleWait)
	if n := b.count("#rotated-secret"); n != 0 {
		b.fatalf("#rotated-secret shows before the confirmation")
	}
	b.click("dialog#confirm #confirm-ok")
	b.waitJS("#rotated-secret", `(e => !!e && e.textContent.trim() !== "")(document.getElementById("rotated-secret"))`, consoleWait)
	newSecret := b.text("#rotated-secret")
	if !strings.HasPrefix(newSecret, "whsec_") || newSecret == oldSecret {
		b.fatalf("#rotated-secret shows %q, want a new whsec_… secret", newSecret)
	}
	if got := b.text("#flash"); got != "Secret rotated." {
		b.fatalf("#flash says %q after the rotation, want Secret rotated.", got)
	}
	if got := b.path(); got != "/webhooks/"+hook.ID+"/edit" {
		b.fatalf("the rotation left the edit page for %s", got)
	}
	w, err := api.Webhook(ctx, hook.ID)
	fatalIf(t, err)
	if !w.HasSecret || w.PreviousSecretExpiresAt == nil || time.Until(*w.PreviousSecretExpiresAt) < 23*time.Hour {
		t.Fatalf("after the rotation the API holds %+v, want the previous secret signing for the default overlap of a day", w)
	}

	_, err = api.PublishEvents(ctx, schemas.Event{Resource: "ticket", Trigger: "create", ResourceID: "T-1"})
	fatalIf(t, err)
	waitFor(t, "the delivery after the rotation", 30*time.Second, func() bool { return len(endpoint.received()) > 0 })
	got := endpoint.received()[0]
	sig := got.header.Get("Webhook-Signature")
	if n := strings.Count(sig, "v1,"); n != 2 || len(strings.Fields(sig)) != 2 {
		t.Fatalf("webhook-signature is %q, want two v1, entries during the overlap", sig)
	}
	for name, secret := range map[string]string{"the new": newSecret, "the previous": oldSecret} {
		req := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(string(got.body)))
		req.Header = got.header.Clone()
		if _, err := signing.VerifyRequest(secret, req, time.Minute); err != nil {
			t.Fatalf("the delivery does not verify with %s secret: %v", name, err)
		}
	}
}

// TestConsoleTogglesAndFiltersWebhooks: a row's enabled switch disables its
// webhook; the name filter and the enabled filter show only the matching
// rows and keep themselves in the address.
func TestConsoleTogglesAndFiltersWebhooks(t *testing.T) {
	consoleTest(t)
	endpoint := newConsoleEndpoint(t)
	p := startServe(t, "--data-dir", t.TempDir())
	ctx := context.Background()
	api := p.api()
	create := func(name string, enabled bool) schemas.PublicWebhook {
		w, err := api.CreateWebhook(ctx, schemas.WebhookInput{Name: client.Ptr(name), URL: client.Ptr(endpoint.URL + "/" + name),
			Events: client.Ptr([]string{"ticket.created"}), Enabled: client.Ptr(enabled), Retries: client.Ptr(0)})
		fatalIf(t, err)
		return w
	}
	alpha := create("alpha", true)
	beta := create("beta", true)
	gamma := create("gamma", false)
	row := func(w schemas.PublicWebhook) string { return fmt.Sprintf(`table#webhooks tbody tr[data-id=%q]`, w.ID) }
	b := newConsoleBrowser(t, p.base)

	b.open("/", "webhooks")
	b.waitJS("3 rows in table#webhooks", `document.querySelectorAll("table#webhooks tbody tr[data-id]").length === 3`, consoleWait)
	if !b.checked(row(alpha) + " input.toggle") {
		b.fatalf("alpha's switch is off, want on")
	}
	b.click(row(alpha) + " input.toggle")
	b.waitJS("#flash saying alpha is disabled", `document.getElementById("flash").textContent.includes("alpha disabled")`, consoleWait)
	waitFor(t, "alpha disabled in the API", 10*time.Second, func() bool {
		w, err := api.Webhook(ctx, alpha.ID)
		return err == nil && !w.Enabled
	})
	if b.checked(row(alpha) + " input.toggle") {
		b.fatalf("alpha's switch is on after it disabled the webhook")
	}
	if w, err := api.Webhook(ctx, beta.ID); err != nil || !w.Enabled {
		t.Fatalf("beta after alpha's switch: %+v, %v; want it enabled still", w, err)
	}

	// The name filter: only beta, in the address and in the field.
	b.fill("#filter-name", "beta")
	b.click(`form#filters button[type="submit"]`)
	b.waitJS("the grid filtered by name", fmt.Sprintf(`new URLSearchParams(location.search).get("name") === "beta" && %s && document.querySelectorAll("table#webhooks tbody tr[data-id]").length === 1`,
		pageReady("webhooks")), consoleWait)
	if ids := b.rowIDs("webhooks"); !slices.Equal(ids, []string{beta.ID}) {
		b.fatalf("filtered by name beta the grid shows %v, want only beta %s", ids, beta.ID)
	}
	if got := b.value("#filter-name"); got != "beta" {
		b.fatalf("#filter-name holds %q after filtering, want beta", got)
	}
	b.present(`form#filters a[href="/"]`) // Clear

	// The enabled filter: the two disabled ones, alpha (by its switch) and gamma.
	b.fill("#filter-name", "")
	b.fill("#filter-enabled", "false")
	b.click(`form#filters button[type="submit"]`)
	b.waitJS("the grid filtered by enabled=false", fmt.Sprintf(`location.search === "?enabled=false" && %s && document.querySelectorAll("table#webhooks tbody tr[data-id]").length === 2`,
		pageReady("webhooks")), consoleWait)
	ids := b.rowIDs("webhooks")
	if slices.Sort(ids); !slices.Equal(ids, slices.Sorted(slices.Values([]string{alpha.ID, gamma.ID}))) {
		b.fatalf("filtered by enabled=false the grid shows %v, want alpha %s and gamma %s", ids, alpha.ID, gamma.ID)
	}
	if got := b.value("#filter-enabled"); got != "false" {
		b.fatalf("#filter-enabled holds %q after filtering, want false", got)
	}
	for _, sel := range []string{row(alpha), row(gamma)} {
		if b.checked(sel + " input.toggle") {
			b.fatalf("a disabled webhook's switch is on: %s", sel)
		}
	}

	// The address alone restores the filters, as a bookmark does.
	b.open("/?name=alpha,gamma&enabled=false", "webhooks")
	b.waitJS("2 rows for the bookmarked filters", `document.querySelectorAll("table#webhooks tbody tr[data-id]").length === 2`, consoleWait)
	if got := b.value("#filter-name"); got != "alpha,gamma" {
		b.fatalf("#filter-name holds %q from the address, want alpha,gamma", got)
	}
}

// TestConsoleSendsATestAndRedeliversFailed: Send test event makes a
// hookline.ping delivery that shows in the list and reaches the endpoint;
// the delivery filters show only the failed ones; Redeliver failed sends
// the one failed delivery again and says so.
func TestConsoleSendsATestAndRedeliversFailed(t *testing.T) {
	consoleTest(t)
	endpoint := newConsoleEndpoint(t)
	p := startServe(t, "--data-dir", t.TempDir())
	ctx := context.Background()
	api := p.api()
	hook, err := api.CreateWebhook(ctx, schemas.WebhookInput{Name: client.Ptr("desk"), URL: client.Ptr(endpoint.URL),
		Events: client.Ptr([]string{"ticket.*"}), Retries: client.Ptr(0)})
	fatalIf(t, err)
	_, err = api.PublishEvents(ctx,
		schemas.Event{Resource: "ticket", Trigger: "create", ResourceID: "FAIL-1"},
		schemas.Event{Resource: "ticket", Trigger: "create", ResourceID: "T-1"})
	fatalIf(t, err)
	var failed string
	waitFor(t, "one failed and one succeeded delivery in the API", 30*time.Second, func() bool {
		states := map[string]int{}
		for _, d := range deliveriesOf(t, p, hook.ID, client.DeliveryQuery{Limit: 10}).Data {
			states[d.State]++
			if d.State == "failed" {
				failed = d.ID
			}
		}
		return states["failed"] == 1 && states["succeeded"] == 1
	})
	b := newConsoleBrowser(t, p.base)

	b.open("/webhooks/"+hook.ID, "webhook")
	b.waitJS("the 2 deliveries in table#deliveries", `document.querySelectorAll("table#deliveries tbody tr[data-id]").length === 2`, consoleWait)

	// Send test event.
	b.click("button#send-test")
	b.waitJS("#flash about the test event", `document.getElementById("flash").textContent.includes("Test event sent")`, consoleWait)
	ping := `(r => !!r && (i => !!i && i.getAttribute("data-state") === "succeeded")(r.querySelector(".state-icon")))(
		[...document.querySelectorAll("table#deliveries tbody tr[data-id]")].find(r => (r.querySelector(".event-type") || {}).textContent === "hookline.ping"))`
	b.waitJS("a succeeded hookline.ping row in table#deliveries", ping, consoleDeliveryWait)
	if n := b.count("table#deliveries tbody tr[data-id]"); n != 3 {
		b.fatalf("table#deliveries has %d rows after the test event, want 3", n)
	}
	pings := requestsWith(endpoint, `"event_type":"hookline.ping"`)
	if len(pings) != 1 || pings[0].header.Get("X-Hookline-Event") != "hookline.ping" {
		t.Fatalf("the endpoint got %d hookline.ping requests, want 1 (X-Hookline-Event %q)", len(pings), func() string {
			if len(pings) > 0 {
				return pings[0].header.Get("X-Hookline-Event")
			}
			return ""
		}())
	}

	// The delivery filters: state failed shows only the failed one.
	b.fill(`form#delivery-filters select[name="state"]`, "failed")
	b.click(`form#delivery-filters button[type="submit"]`)
	b.waitJS("only the failed delivery in table#deliveries", fmt.Sprintf(`(rs => rs.length === 1 && rs[0].getAttribute("data-id") === %s)(document.querySelectorAll("table#deliveries tbody tr[data-id]"))`, js(failed)), consoleWait)
	if got, _ := b.attr(fmt.Sprintf(`table#deliveries tbody tr[data-id=%q] .state-icon`, failed), "data-state"); got != "failed" {
		b.fatalf("the filtered row's icon has data-state %q, want failed", got)
	}

	// Redeliver failed, to an endpoint that works again.
	endpoint.heal()
	b.click(`form#redeliver-failed button[type="submit"]`)
	b.waitJS(`#redeliver-result[data-count="1"]`, `(r => !!r && r.getAttribute("data-count") === "1")(document.getElementById("redeliver-result"))`, consoleWait)
	if got := b.text("#redeliver-result"); !strings.Contains(got, "1 failed delivery redelivered") {
		b.fatalf("#redeliver-result says %q, want 1 failed delivery redelivered", got)
	}
	waitFor(t, "FAIL-1 at the endpoint again", 30*time.Second, func() bool { return len(requestsWith(endpoint, `"FAIL-1"`)) == 2 })
	var redelivery string
	waitFor(t, "the redelivery succeeded in the API", 30*time.Second, func() bool {
		for _, d := range deliveriesOf(t, p, hook.ID, client.DeliveryQuery{Limit: 10}).Data {
			if d.RedeliveryOf == failed && d.State == "succeeded" {
				redelivery = d.ID
				return true
			}
		}
		return false
	})
	// The list, still filtered to the failed ones, does not show it.
	if ids := b.rowIDs("deliveries"); !slices.Equal(ids, []string{failed}) {
		b.fatalf("filtered to failed, table#deliveries shows %v after the redelivery, want only %s", ids, failed)
	}
	b.fill(`form#delivery-filters select[name="state"]`, "")
	b.click(`form#delivery-filters button[type="submit"]`)
	b.waitJS("the redelivery in the unfiltered list", fmt.Sprintf(`document.querySelectorAll("table#deliveries tbody tr[data-id]").length === 4 && !!document.querySelector(%s)`,
		js(fmt.Sprintf(`table#deliveries tbody tr[data-id=%q] .redelivered`, redelivery))), consoleDeliveryWait)

	// Nothing more is left to redeliver.
	b.click(`form#redeliver-failed button[type="submit"]`)
	b.waitJS(`#redeliver-result[data-count="0"]`, `(r => !!r && r.getAttribute("data-count") === "0")(document.getElementById("redeliver-result"))`, consoleWait)
}

// TestConsoleReplaysEvents: after a dry run, Replay delivers the events
// the webhook matches; the page follows it to done, and /replays lists
// the dry run and the replay, both done.
func TestConsoleReplaysEvents(t *testing.T) {
	consoleTest(t)
	endpoint := newConsoleEndpoint(t)
	p := startServe(t, "--data-dir", t.TempDir())
	ctx := context.Background()
	api := p.api()
	// Published before the webhook exists: only a replay can reach them.
	_, err := api.PublishEvents(ctx,
		schemas.Event{Resource: "ticket", Trigger: "create", ResourceID: "T-1", Data: json.RawMessage(`{"subject":"one"}`)},
		schemas.Event{Resource: "ticket", Trigger: "create", ResourceID: "T-2", Data: json.RawMessage(`{"subject":"two"}`)},
		schemas.Event{Resource: "order", Trigger: "paid", ResourceID: "O-1"})
	fatalIf(t, err)
	waitFor(t, "the matcher to read the 3 events", 30*time.Second, func() bool {
		m, err := api.Metrics(ctx)
		return err == nil && strings.Contains(m, "hookline_matcher_events_total 3")
	})
	hook, err := api.CreateWebhook(ctx, schemas.WebhookInput{Name: client.Ptr("late tickets"), URL: client.Ptr(endpoint.URL),
		Events: client.Ptr([]string{"ticket.created"}), Retries: client.Ptr(0)})
	fatalIf(t, err)
	b := newConsoleBrowser(t, p.base)

	b.open("/webhooks/"+hook.ID, "webhook")
	if disabled := evalJS[bool](b, `document.getElementById("replay-run").disabled`); !disabled {
		b.fatalf("button#replay-run is enabled before a dry run")
	}
	b.click("button#replay-dry-run")
	b.waitJS("the dry run done", `(r => !!r && r.getAttribute("data-state") === "done" && r.getAttribute("data-matched") === "2")(document.getElementById("replay-result"))`, 30*time.Second)
	if disabled := evalJS[bool](b, `document.getElementById("replay-run").disabled`); disabled {
		b.fatalf("button#replay-run is still disabled after a dry run that matched 2")
	}
	if got := b.text("button#replay-run"); got != "Replay 2 events" {
		b.fatalf("button#replay-run says %q, want Replay 2 events", got)
	}
	time.Sleep(300 * time.Millisecond) // time for a wrongful delivery of the dry run to arrive
	if n := len(endpoint.received()); n != 0 {
		t.Fatalf("the dry run delivered %d requests", n)
	}

	b.click("button#replay-run")
	b.waitJS("the replay done", `(r => !!r && r.getAttribute("data-state") === "done" && r.textContent.startsWith("Replay done"))(document.getElementById("replay-result"))`, 30*time.Second)
	if got := b.text("#replay-result"); !strings.Contains(got, "2 enqueued") {
		b.fatalf("#replay-result says %q, want 2 enqueued", got)
	}
	if v := evalJS[float64](b, `document.getElementById("replay-progress").value`); v != 1 {
		b.fatalf("#replay-progress is at %v when the replay is done, want 1", v)
	}
	waitFor(t, "the 2 replayed tickets at the endpoint", 30*time.Second, func() bool { return len(endpoint.received()) >= 2 })
	time.Sleep(300 * time.Millisecond) // time for a wrongful third delivery to arrive
	got := endpoint.received()
	if len(got) != 2 || len(requestsWith(endpoint, `"T-1"`)) != 1 || len(requestsWith(endpoint, `"T-2"`)) != 1 {
		t.Fatalf("the replay delivered %d requests, want T-1 and T-2 once each", len(got))
	}

	var replays struct {
		Data []schemas.PublicReplay `json:"data"`
	}
	fatalIf(t, api.Do(ctx, http.MethodGet, "/v1/replays", nil, &replays))
	if len(replays.Data) != 2 {
		t.Fatalf("the console made %d replays, want the dry run and the replay: %+v", len(replays.Data), replays.Data)
	}
	kinds := map[bool]schemas.PublicReplay{}
	for _, r := range replays.Data {
		kinds[r.DryRun] = r
	}
	if r := kinds[false]; r.ID == "" || r.Matched != 2 || r.Enqueued != 2 || !slices.Equal(r.WebhookIDs, []string{hook.ID}) {
		t.Fatalf("the replay is %+v, want one of the webhook that matched and enqueued 2", r)
	}

	// The deliveries it made show on the webhook page, marked as replayed.
	b.waitJS("the 2 replayed deliveries with their replay badge", `document.querySelectorAll("table#deliveries tbody tr[data-id] .badge").length === 2`, consoleDeliveryWait)

	b.open("/replays", "replays")
	if n := b.count("table#replays tbody tr[data-id]"); n != 2 {
		b.fatalf("table#replays has %d rows, want 2", n)
	}
	for dry, r := range kinds {
		row := fmt.Sprintf(`table#replays tbody tr[data-id=%q]`, r.ID)
		if got := b.text(row + " .state"); got != "done" {
			b.fatalf("replay %s (dry run %v) shows state %q, want done", r.ID, dry, got)
		}
		kind := map[bool]string{true: "dry run", false: "deliver"}[dry]
		if got := b.text(row); !strings.Contains(got, kind) {
			b.fatalf("replay %s's row %q does not say %q", r.ID, got, kind)
		}
	}
}

// TestConsoleCreateRefusesABadURLAndMakesUnsignedWebhooks: an invalid URL
// shows the server's error under the URL field and creates nothing; fixed,
// with "Unsigned: no secret", it creates a webhook without a secret, whose
// deliveries carry no signature, and lands on its page.
func TestConsoleCreateRefusesABadURLAndMakesUnsignedWebhooks(t *testing.T) {
	consoleTest(t)
	endpoint := newConsoleEndpoint(t)
	p := startServe(t, "--data-dir", t.TempDir())
	ctx := context.Background()
	api := p.api()
	b := newConsoleBrowser(t, p.base)

	b.open("/webhooks/new", "webhook-form")
	b.typeText(webhookForm(`[name="name"]`), "unsigned")
	b.typeText(webhookForm(`[name="url"]`), "not a url")
	b.fill(webhookForm(`[name="retries"]`), "0")
	b.click("button#save")
	errSel := `.field-error[data-field="url"]`
	b.waitJS("the url's field error", fmt.Sprintf(`(e => !!e && e.textContent.trim() !== "")(document.querySelector(%s))`, js(errSel)), consoleWait)
	if got, _ := b.attr(webhookForm(`[name="url"]`), "aria-invalid"); got != "true" {
		b.fatalf("the url field has aria-invalid=%q, want true", got)
	}
	if got := b.path(); got != "/webhooks/new" {
		b.fatalf("after a refused create the console is at %s, want /webhooks/new", got)
	}
	if disabled := evalJS[bool](b, `document.getElementById("save").disabled`); disabled {
		b.fatalf("button#save stays disabled after a refused create")
	}
	if hooks := listWebhooks(t, api); len(hooks) != 0 {
		t.Fatalf("a create with an invalid URL made webhooks: %+v", hooks)
	}

	b.fill(webhookForm(`[name="url"]`), endpoint.URL+"/plain")
	b.click(webhookForm(`input[name="secret_mode"][value="none"]`))
	b.click("button#save")
	b.waitJS("the new webhook's page", `location.pathname.startsWith("/webhooks/") && location.pathname !== "/webhooks/new" && `+pageReady("webhook"), consoleWait)
	hooks := listWebhooks(t, api)
	if len(hooks) != 1 {
		t.Fatalf("the form created %d webhooks, want 1: %+v", len(hooks), hooks)
	}
	hook := hooks[0]
	if hook.Name != "unsigned" || hook.URL != endpoint.URL+"/plain" || hook.HasSecret || !slices.Equal(hook.Events, []string{"*"}) {
		t.Fatalf("the form created %+v, want an unsigned webhook of every event", hook)
	}
	if got := b.path(); got != "/webhooks/"+hook.ID {
		b.fatalf("after the create the console is at %s, want /webhooks/%s", got, hook.ID)
	}
	if n := b.count("#secret-once"); n != 0 {
		b.fatalf("an unsigned webhook's create shows a secret")
	}
	if got := b.text("#flash"); got != "Webhook created." {
		b.fatalf("#flash says %q after the create, want Webhook created.", got)
	}
	if got := b.text("#webhook-summary"); !strings.Contains(got, "unsigned") {
		b.fatalf("#webhook-summary says %q, want unsigned", got)
	}

	_, err := api.PublishEvents(ctx, schemas.Event{Resource: "ticket", Trigger: "create", ResourceID: "T-1"})
	fatalIf(t, err)
	waitFor(t, "the delivery at the endpoint", 30*time.Second, func() bool { return len(endpoint.received()) > 0 })
	req := endpoint.received()[0]
	for _, h := range []string{"Webhook-Signature", "X-Hookline-Signature-256"} {
		if v := req.header.Get(h); v != "" {
			t.Fatalf("an unsigned webhook's delivery carries %s: %q", h, v)
		}
	}
}

// TestConsoleOpensADeliveryByItsRowAndDeletesFromTheEditPage: as in BMS, a
// click anywhere on a delivery's row opens it; the edit page deletes its
// webhook after a confirmation (Cancel keeps it).
func TestConsoleOpensADeliveryByItsRowAndDeletesFromTheEditPage(t *testing.T) {
	consoleTest(t)
	endpoint := newConsoleEndpoint(t)
	p := startServe(t, "--data-dir", t.TempDir())
	ctx := context.Background()
	api := p.api()
	w, err := api.CreateWebhook(ctx, schemas.WebhookInput{Name: client.Ptr("rows"), URL: client.Ptr(endpoint.URL + "/rows"),
		Events: client.Ptr([]string{"ticket.created"}), Retries: client.Ptr(0)})
	fatalIf(t, err)
	_, err = api.PublishEvents(ctx, schemas.Event{Resource: "ticket", Trigger: "create", ResourceID: "T-1"})
	fatalIf(t, err)
	var delivery string
	waitFor(t, "the delivery in the API", 30*time.Second, func() bool {
		list := deliveriesOf(t, p, w.ID, client.DeliveryQuery{})
		if len(list.Data) == 1 {
			delivery = list.Data[0].ID
		}
		return delivery != ""
	})
	b := newConsoleBrowser(t, p.base)

	b.open("/webhooks/"+w.ID, "webhook")
	row := fmt.Sprintf(`table#deliveries tbody tr[data-id=%q]`, delivery)
	b.waitJS("the delivery's row", fmt.Sprintf(`!!document.querySelector(%s)`, js(row)), consoleWait)
	b.click(row + " td.event-type")
	b.waitPage("delivery")
	if got := b.path(); got != "/deliveries/"+delivery {
		b.fatalf("a click on the row opened %s, want /deliveries/%s", got, delivery)
	}

	b.open("/webhooks/"+w.ID+"/edit", "webhook-form")
	b.click("form#webhook-form button#delete-webhook")
	b.waitJS("dialog#confirm to open", `(d => !!d && d.open)(document.querySelector("dialog#confirm"))`, consoleWait)
	b.click("dialog#confirm #confirm-cancel")
	if hooks := listWebhooks(t, api); len(hooks) != 1 {
		b.fatalf("Cancel deleted the webhook: %+v", hooks)
	}
	b.click("form#webhook-form button#delete-webhook")
	b.waitJS("dialog#confirm to open again", `(d => !!d && d.open)(document.querySelector("dialog#confirm"))`, consoleWait)
	b.click("dialog#confirm #confirm-ok")
	b.waitPage("webhooks")
	if got := b.path(); got != "/" {
		b.fatalf("after the delete the console is at %s, want the grid", got)
	}
	if hooks := listWebhooks(t, api); len(hooks) != 0 {
		b.fatalf("the webhook is still there after Delete: %+v", hooks)
	}
}
