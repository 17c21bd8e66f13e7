package main

// The admin console (api/console, served by `hookline serve` at /), driven
// in a headless Chromium through chromedp: each test starts `hookline
// serve`, opens the console in one browser of its own and goes through one
// flow a user would, asserting what the page shows (texts, counts,
// attributes) and what the API then holds.
//
// The browser is HOOKLINE_TEST_CHROMIUM (scripts/chromium.sh sets it for
// `make test`), else `chromium` on PATH. Without one the tests skip loudly,
// or fail under CI=true.
//
// With HOOKLINE_SCREENSHOTS=dir (`make screenshots` sets it to docs/) the
// tests save full-page PNGs of the pages they go through, 1280 px wide.

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"

	"github.com/hookline/hookline/client"
	"github.com/hookline/hookline/projections"
	"github.com/hookline/hookline/schemas"
	"github.com/hookline/hookline/signing"
)

const (
	// consoleTestTimeout bounds each console test, browser included.
	consoleTestTimeout = 100 * time.Second
	// consoleWait bounds one wait for the page to show something.
	consoleWait = 20 * time.Second
	// consoleDeliveryWait bounds a wait for deliveries to show up in a
	// page that refreshes itself every few seconds.
	consoleDeliveryWait = 40 * time.Second
	consoleWidth        = 1280
	consoleHeight       = 800
)

// chromiumForTests returns the browser to drive, or skips the test loudly
// (fails it under CI=true) when there is none.
func chromiumForTests(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("HOOKLINE_TEST_CHROMIUM"); p != "" {
		return p
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	banner := func(what string) string {
		return "\n" + strings.Repeat("#", 78) + "\n" +
			"#  NO CHROMIUM: the console's browser test " + t.Name() + " " + what + ".\n" +
			"#  Install Debian's chromium (apt-get install -y chromium; `make test` does it\n" +
			"#  as root) or set HOOKLINE_TEST_CHROMIUM to a Chrome/Chromium binary.\n" +
			strings.Repeat("#", 78)
	}
	if os.Getenv("CI") == "true" {
		t.Fatal(banner("FAILS (CI=true)"))
	}
	t.Skip(banner("is SKIPPED"))
	return ""
}

// consoleBrowser is one headless Chromium with one tab, for one test.
type consoleBrowser struct {
	t    *testing.T
	ctx  context.Context // the tab; ends with the test's deadline
	base string

	mu      sync.Mutex
	console []string // what the page wrote to its console
	thrown  []string // its uncaught exceptions
	dialogs []string // JavaScript dialogs (alert, confirm) it opened
}

// newConsoleBrowser starts Chromium for the console at base (a serve's
// p.base), with a 1280x800 window. The browser ends with the test; an
// uncaught exception in the page fails the test.
func newConsoleBrowser(t *testing.T, base string) *consoleBrowser {
	t.Helper()
	path := chromiumForTests(t)
	ctx, cancel := context.WithTimeout(context.Background(), consoleTestTimeout)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.WindowSize(consoleWidth, consoleHeight),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	tabCtx, cancelTab := chromedp.NewContext(allocCtx)
	b := &consoleBrowser{t: t, ctx: tabCtx, base: base}
	var wg sync.WaitGroup
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc()
		cancel()
		wg.Wait()
		b.mu.Lock()
		defer b.mu.Unlock()
		if len(b.thrown) > 0 {
			t.Errorf("the console threw uncaught exceptions:\n%s", strings.Join(b.thrown, "\n"))
		}
	})
	start := time.Now()
	if err := chromedp.Do(tabCtx, chromedp.EmulateViewport(consoleWidth, consoleHeight)); err != nil {
		t.Fatalf("starting %s: %v", path, err)
	}
	t.Logf("chromium %s started in %v", path, time.Since(start).Round(time.Millisecond))

	messages := chromedp.Console(tabCtx)
	dialogs := chromedp.Events(tabCtx, page.JavascriptDialogOpening)
	wg.Go(func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.console = append(b.console, fmt.Sprintf("%s %s:%d %s", m.Type, m.URL, m.Line+1, m))
			if m.IsException() {
				b.thrown = append(b.thrown, fmt.Sprintf("%s:%d %s", m.URL, m.Line+1, m))
			}
			b.mu.Unlock()
		}
	})
	wg.Go(func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			b.mu.Lock()
			b.dialogs = append(b.dialogs, fmt.Sprintf("%s: %q", ev.Type, ev.Message))
			b.mu.Unlock()
			// Accept it, so that the page goes on; the test then fails on
			// what the contract says instead of hanging.
			chromedp.Call(tabCtx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: true})
		}
	})
	return b
}

// js quotes v as a JavaScript literal.
func js(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// diagnose describes the page for a failure: its URL, the rendered
// <main>, and what it wrote to its console.
func (b *consoleBrowser) diagnose() string {
	var sb strings.Builder
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	state, err := chromedp.Run(ctx, chromedp.Evaluate[string](`JSON.stringify({url: location.href,
		html: (document.getElementById("main") || document.body || document.documentElement).outerHTML})`))
	if err != nil {
		fmt.Fprintf(&sb, "(cannot read the page: %v)\n", err)
	} else {
		var s struct {
			URL  string `json:"url"`
			HTML string `json:"html"`
		}
		json.Unmarshal([]byte(state), &s)
		if len(s.HTML) > 6000 {
			s.HTML = s.HTML[:6000] + "…"
		}
		fmt.Fprintf(&sb, "page: %s\n%s\n", s.URL, s.HTML)
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	msgs := b.console
	if len(msgs) > 40 {
		msgs = msgs[len(msgs)-40:]
	}
	fmt.Fprintf(&sb, "browser console (%d messages):\n  %s\n", len(b.console), strings.Join(msgs, "\n  "))
	if len(b.dialogs) > 0 {
		fmt.Fprintf(&sb, "JavaScript dialogs the page opened (accepted): %s\n", strings.Join(b.dialogs, "; "))
	}
	return sb.String()
}

func (b *consoleBrowser) fatalf(format string, args ...any) {
	b.t.Helper()
	b.t.Fatalf(format+"\n--- %s", append(args, b.diagnose())...)
}

// do runs actions with a bound of its own.
func (b *consoleBrowser) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, consoleWait)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fatalf("%s: %v", what, err)
	}
}

// evalJS evaluates expr in the page and decodes its value.
func evalJS[T any](b *consoleBrowser, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.fatalf("evaluating %s: %v", expr, err)
	}
	return v
}

// waitJS waits until expr is truthy in the page.
func (b *consoleBrowser) waitJS(what, expr string, timeout time.Duration) {
	b.t.Helper()
	deadline := time.Now().Add(timeout)
	var last error
	for {
		ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`!!(`+expr+`)`))
		cancel()
		if err == nil && ok {
			return
		}
		if err != nil {
			last = err // a page being replaced, or an expression that throws
		}
		if time.Now().After(deadline) || b.ctx.Err() != nil {
			b.fatalf("timed out after %v waiting for %s\n(%s; last error: %v)", timeout, what, expr, last)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// pageReady is the console's signal that a page has rendered.
func pageReady(name string) string {
	return fmt.Sprintf(`(m => !!m && m.getAttribute("data-page") === %s && !m.hasAttribute("data-loading"))(document.getElementById("main"))`, js(name))
}

// waitPage waits for the console to have rendered the page name.
func (b *consoleBrowser) waitPage(name string) {
	b.t.Helper()
	b.waitJS(fmt.Sprintf("the %s page (#main[data-page=%s]:not([data-loading]))", name, name), pageReady(name), consoleWait)
}

// open loads path of the console and waits for the page name.
func (b *consoleBrowser) open(path, name string) {
	b.t.Helper()
	b.do("opening "+path, chromedp.Navigate(b.base+path))
	b.waitPage(name)
}

// present waits for an element.
func (b *consoleBrowser) present(sel string) {
	b.t.Helper()
	b.waitJS(sel, fmt.Sprintf(`document.querySelector(%s)`, js(sel)), consoleWait)
}

// count is the number of elements sel matches.
func (b *consoleBrowser) count(sel string) int {
	b.t.Helper()
	return evalJS[int](b, fmt.Sprintf(`document.querySelectorAll(%s).length`, js(sel)))
}

// text is the trimmed text of the element sel, which must exist.
func (b *consoleBrowser) text(sel string) string {
	b.t.Helper()
	b.present(sel)
	return evalJS[string](b, fmt.Sprintf(`document.querySelector(%s).textContent.trim()`, js(sel)))
}

// attr is an attribute of the element sel, which must exist; ok is false
// when the element has no such attribute.
func (b *consoleBrowser) attr(sel, name string) (string, bool) {
	b.t.Helper()
	b.present(sel)
	v := evalJS[[]string](b, fmt.Sprintf(`(e => e.hasAttribute(%s) ? [e.getAttribute(%s)] : [])(document.querySelector(%s))`, js(name), js(name), js(sel)))
	if len(v) == 0 {
		return "", false
	}
	return v[0], true
}

// href is the path (and query) a link sel points to, resolved.
func (b *consoleBrowser) href(sel string) string {
	b.t.Helper()
	b.present(sel)
	return evalJS[string](b, fmt.Sprintf(`(e => e.href ? (u => u.pathname + u.search)(new URL(e.href)) : "")(document.querySelector(%s))`, js(sel)))
}

// path is the page's location.pathname.
func (b *consoleBrowser) path() string {
	b.t.Helper()
	return evalJS[string](b, `location.pathname`)
}

// click clicks the element sel with the mouse, as a user does; an element
// the mouse cannot reach (a visually hidden checkbox behind its label) is
// clicked from JavaScript.
func (b *consoleBrowser) click(sel string) {
	b.t.Helper()
	b.present(sel)
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible)); err != nil {
		b.t.Logf("clicking %s with the mouse: %v; clicking it from JavaScript", sel, err)
		evalJS[bool](b, fmt.Sprintf(`(document.querySelector(%s).click(), true)`, js(sel)))
	}
}

// typeText types text into the element sel, key by key.
func (b *consoleBrowser) typeText(sel, text string) {
	b.t.Helper()
	b.present(sel)
	b.do("typing into "+sel, chromedp.SendKeys(chromedp.CSS(sel), text, chromedp.NodeVisible))
}

// fill replaces the value of the field sel, firing input and change as
// typing does.
func (b *consoleBrowser) fill(sel, value string) {
	b.t.Helper()
	b.present(sel)
	evalJS[bool](b, fmt.Sprintf(`(e => { e.focus(); e.value = %s;
		e.dispatchEvent(new Event("input", {bubbles: true}));
		e.dispatchEvent(new Event("change", {bubbles: true})); return true })(document.querySelector(%s))`, js(value), js(sel)))
}

// screenshot saves a full-page PNG of the page as name in
// $HOOKLINE_SCREENSHOTS, when that is set.
func (b *consoleBrowser) screenshot(name string) {
	b.t.Helper()
	dir := os.Getenv("HOOKLINE_SCREENSHOTS")
	if dir == "" {
		return
	}
	b.do("setting the viewport", chromedp.EmulateViewport(consoleWidth, consoleHeight))
	height := evalJS[float64](b, `Math.max(document.documentElement.scrollHeight, document.body ? document.body.scrollHeight : 0)`)
	if height < consoleHeight {
		height = consoleHeight
	}
	ctx, cancel := context.WithTimeout(b.ctx, consoleWait)
	defer cancel()
	png, err := chromedp.Run(ctx, func(ctx context.Context, t *chromedp.Target) ([]byte, error) {
		r, err := cdp.Call(ctx, t, page.CaptureScreenshot, page.CaptureScreenshotParams{
			Format:                page.CaptureScreenshotFormatPng,
			CaptureBeyondViewport: new(true),
			FromSurface:           new(true),
			Clip:                  &page.Viewport{Width: consoleWidth, Height: height, Scale: 1},
		})
		return r.Data, err
	})
	if err != nil {
		b.fatalf("screenshot %s: %v", name, err)
	}
	fatalIf(b.t, os.MkdirAll(dir, 0o755))
	out := filepath.Join(dir, name)
	fatalIf(b.t, os.WriteFile(out, png, 0o644))
	b.t.Logf("saved %s (%d bytes, 1280x%d)", out, len(png), int(height))
}

// consoleEndpoint is a customer endpoint for the console tests: it answers
// 200, except 500 ("boom") for events whose resource id starts with FAIL-
// until it is healed, and keeps every request.
type consoleEndpoint struct {
	*httptest.Server
	mu       sync.Mutex
	healed   bool
	requests []consoleRequest
}

type consoleRequest struct {
	header http.Header
	body   []byte
}

func newConsoleEndpoint(t *testing.T) *consoleEndpoint {
	e := &consoleEndpoint{}
	e.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body []byte
		buf := make([]byte, 32<<10)
		for {
			n, err := r.Body.Read(buf)
			body = append(body, buf[:n]...)
			if err != nil {
				break
			}
		}
		e.mu.Lock()
		defer e.mu.Unlock()
		e.requests = append(e.requests, consoleRequest{header: r.Header.Clone(), body: body})
		if !e.healed && strings.Contains(string(body), `"resource_id":"FAIL-`) {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, "boom")
			return
		}
		fmt.Fprint(w, "ok")
	}))
	t.Cleanup(e.Close)
	return e
}

func (e *consoleEndpoint) heal() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.healed = true
}

func (e *consoleEndpoint) received() []consoleRequest {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.requests)
}

// listWebhooks reads every webhook through the API.
func listWebhooks(t *testing.T, api *client.Client) []schemas.PublicWebhook {
	t.Helper()
	var out struct {
		Data []schemas.PublicWebhook `json:"data"`
	}
	fatalIf(t, api.Do(context.Background(), http.MethodGet, "/v1/webhooks?limit=100", nil, &out))
	return out.Data
}

// consoleTest skips a console test in -short mode, and without a browser
// (chromiumForTests), before it starts anything.
func consoleTest(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test")
	}
	chromiumForTests(t)
}

// TestConsoleCreatesAWebhookThroughTheForm: the form shows the server's
// error for a broken condition next to the condition field, creates the
// webhook once it is fixed, shows the generated secret once, and the
// webhook it made delivers, signed with that secret, only what the
// condition lets through.
func TestConsoleCreatesAWebhookThroughTheForm(t *testing.T) {
	consoleTest(t)
	endpoint := newConsoleEndpoint(t)
	p := startServe(t, "--data-dir", t.TempDir())
	b := newConsoleBrowser(t, p.base)
	ctx := context.Background()

	b.open("/webhooks/new", "webhook-form")
	b.present("form#webhook-form")
	b.typeText(`form#webhook-form [name="name"]`, "console tickets")
	b.typeText(`form#webhook-form [name="url"]`, endpoint.URL+"/hooks")
	b.click(`form#webhook-form input[name="secret_mode"][value="generate"]`)
	b.click(`form#webhook-form input[name="events_mode"][value="select"]`)
	b.click(`form#webhook-form input[name="event"][value="ticket.created"]`)
	b.click(`form#webhook-form input[name="event"][value="ticket.updated"]`)
	b.fill(`form#webhook-form [name="retries"]`, "0")
	b.screenshot("console-webhook-form.png")

	// A broken condition: the server's message, which names the line and
	// the column, shows next to the field, and nothing is created.
	b.typeText(`form#webhook-form textarea[name="condition"]`, "data.priority ==")
	b.click("button#save")
	errSel := `.field-error[data-field="condition"]`
	b.waitJS("the condition's field error", fmt.Sprintf(`(e => e && e.textContent.trim() !== "")(document.querySelector(%s))`, js(errSel)), consoleWait)
	if msg := b.text(errSel); !strings.Contains(msg, "line 1") || !strings.Contains(msg, "column") {
		b.fatalf("the condition's error %q does not name the line and column the server named", msg)
	}
	if got := b.path(); got != "/webhooks/new" {
		b.fatalf("after a refused create the console is at %s, want /webhooks/new", got)
	}
	if hooks := listWebhooks(t, p.api()); len(hooks) != 0 {
		t.Fatalf("a refused create made webhooks: %+v", hooks)
	}
	for _, field := range []string{"name", "url"} {
		if n := b.count(fmt.Sprintf(`.field-error[data-field=%q]`, field)); n > 0 {
			if msg := b.text(fmt.Sprintf(`.field-error[data-field=%q]`, field)); msg != "" {
				b.fatalf("field %s shows an error %q; only the condition is wrong", field, msg)
			}
		}
	}

	// Fixed, it is created; the generated secret is shown once.
	b.fill(`form#webhook-form textarea[name="condition"]`, `data.priority == "High"`)
	b.click("button#save")
	b.waitJS("the generated secret (#secret-once code#new-secret)", `(e => e && e.textContent.trim() !== "")(document.querySelector("#secret-once code#new-secret"))`, consoleWait)
	secret := b.text("#secret-once code#new-secret")
	if !strings.HasPrefix(secret, "whsec_") {
		b.fatalf("the generated secret is %q, want whsec_…", secret)
	}
	b.present("#secret-once button#copy-secret")
	hooks := listWebhooks(t, p.api())
	if len(hooks) != 1 {
		t.Fatalf("the form created %d webhooks, want 1: %+v", len(hooks), hooks)
	}
	hook := hooks[0]
	if hook.Name != "console tickets" || hook.URL != endpoint.URL+"/hooks" || hook.Condition != `data.priority == "High"` ||
		!slices.Equal(hook.Events, []string{"ticket.created", "ticket.updated"}) || hook.Retries != 0 || !hook.HasSecret || !hook.Enabled {
		t.Fatalf("the form created %+v", hook)
	}
	if got := b.href("#secret-once a#continue"); got != "/webhooks/"+hook.ID {
		b.fatalf("a#continue points to %s, want /webhooks/%s", got, hook.ID)
	}
	b.click("#secret-once a#continue")
	b.waitPage("webhook")
	if got := b.path(); got != "/webhooks/"+hook.ID {
		b.fatalf("continue led to %s, want /webhooks/%s", got, hook.ID)
	}
	if h1 := b.text("#main h1"); h1 != "console tickets" {
		b.fatalf("the webhook page's h1 is %q, want the webhook's name", h1)
	}

	// The webhook works: only the High ticket is delivered, signed with
	// the secret the console showed. Both events are on one resource (one
	// partition), so once the second arrived the first was matched.
	_, err := p.api().PublishEvents(ctx,
		schemas.Event{Resource: "ticket", Trigger: "create", ResourceID: "T-1", Data: json.RawMessage(`{"priority":"Low"}`)},
		schemas.Event{Resource: "ticket", Trigger: "update", ResourceID: "T-1", Data: json.RawMessage(`{"priority":"High"}`)})
	fatalIf(t, err)
	waitFor(t, "the High ticket at the endpoint", 30*time.Second, func() bool { return len(endpoint.received()) > 0 })
	got := endpoint.received()
	if len(got) != 1 || !strings.Contains(string(got[0].body), `"priority":"High"`) {
		t.Fatalf("the endpoint got %d requests (first: %s), want only the High ticket", len(got), got[0].body)
	}
	req := httptest.NewRequest(http.MethodPost, "/hooks", strings.NewReader(string(got[0].body)))
	req.Header = got[0].header
	if _, err := signing.VerifyRequest(secret, req, time.Minute); err != nil {
		t.Fatalf("the delivery does not verify with the secret the console showed: %v", err)
	}
}

// TestConsoleShowsDeliveriesAndRedelivers: deliveries published through
// the API appear on the open webhook page with their state icons; a
// delivery's page shows its signature and its response; a failed one is
// redelivered from its page, and both pages and the webhook's list show
// the link between the two.
func TestConsoleShowsDeliveriesAndRedelivers(t *testing.T) {
	consoleTest(t)
	endpoint := newConsoleEndpoint(t)
	p := startServe(t, "--data-dir", t.TempDir())
	ctx := context.Background()
	api := p.api()
	hook, err := api.CreateWebhook(ctx, schemas.WebhookInput{Name: client.Ptr("help desk"), URL: client.Ptr(endpoint.URL),
		Secret: client.Ptr("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"), Events: client.Ptr([]string{"ticket.*"}), Retries: client.Ptr(0)})
	fatalIf(t, err)
	b := newConsoleBrowser(t, p.base)

	// The page is open before the events exist: its list refreshes itself.
	b.open("/webhooks/"+hook.ID, "webhook")
	if h1 := b.text("#main h1"); h1 != "help desk" {
		b.fatalf("the webhook page's h1 is %q, want %q", h1, "help desk")
	}
	b.present("#webhook-summary .breaker")
	for _, sel := range []string{"a#edit", "button#send-test", "button#delete-webhook", "form#redeliver-failed", "form#replay", "form#delivery-filters"} {
		b.present(sel)
	}
	if got := b.href("a#edit"); got != "/webhooks/"+hook.ID+"/edit" {
		b.fatalf("a#edit points to %s", got)
	}
	_, err = api.PublishEvents(ctx,
		schemas.Event{Resource: "ticket", Trigger: "create", ResourceID: "FAIL-1", Data: json.RawMessage(`{"subject":"Printer on fire"}`)},
		schemas.Event{Resource: "ticket", Trigger: "create", ResourceID: "T-1"},
		schemas.Event{Resource: "ticket", Trigger: "update", ResourceID: "T-1"},
		schemas.Event{Resource: "ticket", Trigger: "create", ResourceID: "T-2"})
	fatalIf(t, err)
	var list client.DeliveryPage
	waitFor(t, "4 finished deliveries in the API", 30*time.Second, func() bool {
		list = deliveriesOf(t, p, hook.ID, client.DeliveryQuery{Limit: 10})
		done := 0
		for _, d := range list.Data {
			if d.State == "succeeded" || d.State == "failed" {
				done++
			}
		}
		return done == 4
	})
	var failed string
	for _, d := range list.Data {
		if d.State == "failed" {
			if failed != "" {
				t.Fatalf("two failed deliveries: %+v", list.Data)
			}
			failed = d.ID
		}
	}
	if failed == "" {
		t.Fatalf("no failed delivery: %+v", list.Data)
	}

	// Every delivery shows up, with its state icon, event type and status.
	var conds []string
	for _, d := range list.Data {
		conds = append(conds, fmt.Sprintf(`(i => !!i && i.getAttribute("data-state") === %s)(document.querySelector(%s))`,
			js(d.State), js(fmt.Sprintf(`table#deliveries tbody tr[data-id=%q] .state-icon`, d.ID))))
	}
	b.waitJS("the 4 deliveries with their final state icons in table#deliveries", strings.Join(conds, " && "), consoleDeliveryWait)
	if n := b.count("table#deliveries tbody tr[data-id]"); n != 4 {
		b.fatalf("table#deliveries has %d rows, want 4", n)
	}
	for _, d := range list.Data {
		row := fmt.Sprintf(`table#deliveries tbody tr[data-id=%q]`, d.ID)
		if label, _ := b.attr(row+" .state-icon", "aria-label"); strings.TrimSpace(label) == "" {
			b.fatalf("the state icon of %s has no aria-label", d.ID)
		}
		if got := b.text(row + " .event-type"); got != d.EventType {
			b.fatalf("delivery %s shows event type %q, want %q", d.ID, got, d.EventType)
		}
		if got, want := b.text(row+" .status"), fmt.Sprint(d.LastStatusCode); !strings.Contains(got, want) {
			b.fatalf("delivery %s shows status %q, want %s", d.ID, got, want)
		}
		if got := b.href(row + " a.delivery"); got != "/deliveries/"+d.ID {
			b.fatalf("delivery %s links to %s", d.ID, got)
		}
		if n := b.count(row + " .redelivered"); n != 0 {
			b.fatalf("delivery %s, not a redelivery, has a .redelivered marker", d.ID)
		}
	}
	if got, _ := b.attr(fmt.Sprintf(`table#deliveries tbody tr[data-id=%q] .state-icon`, failed), "data-state"); got != "failed" {
		b.fatalf("the failed delivery's icon has data-state %q", got)
	}
	if b.count(`table#deliveries tbody .state-icon[data-state="succeeded"]`) != 3 {
		b.fatalf("want 3 succeeded icons")
	}
	// Opened again, the page's stats and charts count the 4 deliveries.
	b.open("/webhooks/"+hook.ID, "webhook")
	b.waitJS("#stats counting the 4 deliveries", `(s => !!s && /(^|\s)4(\s|$)/.test(s.innerText))(document.getElementById("stats"))`, consoleWait)
	for _, chart := range []string{"svg#chart-deliveries", "svg#chart-latency"} {
		b.waitJS(chart+" with the deliveries drawn", fmt.Sprintf(`(s => !!s && s.querySelectorAll("rect, path, polyline, polygon, line, circle").length > 0)(document.querySelector(%s))`, js(chart)), consoleWait)
	}
	b.waitJS("the 4 deliveries in table#deliveries again", `document.querySelectorAll("table#deliveries tbody tr[data-id]").length === 4`, consoleWait)
	b.screenshot("console-webhook.png")

	// The failed delivery's page: its signature, its request, its response.
	b.click(fmt.Sprintf(`table#deliveries tbody tr[data-id=%q] a.delivery`, failed))
	b.waitJS("the failed delivery's page", fmt.Sprintf(`location.pathname === %s && %s`, js("/deliveries/"+failed), pageReady("delivery")), consoleWait)
	if h1 := b.text("#main h1"); !strings.Contains(h1, failed) {
		b.fatalf("the delivery page's h1 %q does not contain the id %s", h1, failed)
	}
	if sig := b.text(`table#request-headers tr[data-header="Webhook-Signature"] td`); !strings.HasPrefix(sig, "v1,") {
		b.fatalf("the Webhook-Signature row shows %q, want the signature (v1,…)", sig)
	}
	if body := b.text("pre#request-body"); !strings.Contains(body, "FAIL-1") || !strings.Contains(body, "Printer on fire") {
		b.fatalf("pre#request-body shows %q, want the event FAIL-1", body)
	}
	if n := b.count("section.attempt"); n != 1 {
		b.fatalf("the failed delivery shows %d attempts, want 1 (retries 0)", n)
	}
	if got := b.text("section.attempt .status"); !strings.Contains(got, "500") {
		b.fatalf("the attempt's status shows %q, want 500", got)
	}
	if got := b.text("section.attempt pre.response-body"); !strings.Contains(got, "boom") {
		b.fatalf("the attempt's response body shows %q, want boom", got)
	}
	b.present("section.attempt table.response-headers")
	if got := b.text("button#redeliver"); got != "Redeliver" {
		b.fatalf("button#redeliver on a failed delivery says %q, want Redeliver", got)
	}
	b.screenshot("console-delivery.png")

	// Redeliver it, to an endpoint that works again.
	endpoint.heal()
	b.click("button#redeliver")
	b.waitJS("the redelivery's page (a#redelivery-of)", fmt.Sprintf(`location.pathname.startsWith("/deliveries/") && location.pathname !== %s && %s && !!document.querySelector("a#redelivery-of")`,
		js("/deliveries/"+failed), pageReady("delivery")), consoleWait)
	redelivery := strings.TrimPrefix(b.path(), "/deliveries/")
	if got := b.href("a#redelivery-of"); got != "/deliveries/"+failed {
		b.fatalf("a#redelivery-of points to %s, want /deliveries/%s", got, failed)
	}
	if h1 := b.text("#main h1"); !strings.Contains(h1, redelivery) {
		b.fatalf("the redelivery page's h1 %q does not contain its id %s", h1, redelivery)
	}
	// The projector stores attempts in batches (up to 250 ms later): the
	// redelivery is in the API once its first attempt is.
	var d projections.Delivery
	waitFor(t, "the redelivery in the API", 30*time.Second, func() bool {
		var err error
		d, err = api.Delivery(ctx, redelivery)
		return err == nil
	})
	if d.RedeliveryOf != failed {
		t.Fatalf("the delivery the console opened after Redeliver is %+v, want a redelivery of %s", d, failed)
	}
	waitFor(t, "the redelivery to succeed", 30*time.Second, func() bool {
		d, err := api.Delivery(ctx, redelivery)
		return err == nil && d.State == "succeeded"
	})

	// The original links to its redelivery.
	b.open("/deliveries/"+failed, "delivery")
	b.waitJS("#redelivered-by a on the original", `document.querySelector("#redelivered-by a")`, consoleWait)
	if got := b.href("#redelivered-by a"); got != "/deliveries/"+redelivery {
		b.fatalf("#redelivered-by a points to %s, want /deliveries/%s", got, redelivery)
	}

	// A succeeded delivery offers "Redeliver anyway" and shows its 200.
	var ok string
	for _, d := range list.Data {
		if d.State == "succeeded" {
			ok = d.ID
		}
	}
	b.open("/deliveries/"+ok, "delivery")
	if got := b.text("button#redeliver"); got != "Redeliver anyway" {
		b.fatalf("button#redeliver on a succeeded delivery says %q, want Redeliver anyway", got)
	}
	if got := b.text("section.attempt .status"); !strings.Contains(got, "200") {
		b.fatalf("the attempt's status shows %q, want 200", got)
	}
	if sig := b.text(`table#request-headers tr[data-header="Webhook-Signature"] td`); !strings.HasPrefix(sig, "v1,") {
		b.fatalf("the Webhook-Signature row shows %q, want v1,…", sig)
	}

	// The webhook's list marks the redelivery, linking to the original.
	b.open("/webhooks/"+hook.ID, "webhook")
	row := fmt.Sprintf(`table#deliveries tbody tr[data-id=%q]`, redelivery)
	b.waitJS("the redelivery's row, succeeded, with its .redelivered marker", fmt.Sprintf(
		`(r => !!r && !!r.querySelector(".redelivered") && (i => !!i && i.getAttribute("data-state") === "succeeded")(r.querySelector(".state-icon")))(document.querySelector(%s))`,
		js(row)), consoleDeliveryWait)
	if got := b.href(row + " .redelivered"); got != "/deliveries/"+failed {
		b.fatalf("the .redelivered marker of %s points to %s, want /deliveries/%s", redelivery, got, failed)
	}
	if n := b.count("table#deliveries tbody tr[data-id]"); n != 5 {
		b.fatalf("table#deliveries has %d rows after the redelivery, want 5", n)
	}
	if n := b.count(fmt.Sprintf(`table#deliveries tbody tr[data-id=%q] .redelivered`, failed)); n != 0 {
		b.fatalf("the original %s carries a .redelivered marker", failed)
	}
}

// TestConsoleBulkDeletesWebhooks: the grid lists the webhooks; two are
// selected and deleted after the confirmation, and only the third is left,
// in the page and in the API.
func TestConsoleBulkDeletesWebhooks(t *testing.T) {
	consoleTest(t)
	endpoint := newConsoleEndpoint(t)
	p := startServe(t, "--data-dir", t.TempDir())
	ctx := context.Background()
	api := p.api()
	create := func(name string, events []string, enabled bool) schemas.PublicWebhook {
		w, err := api.CreateWebhook(ctx, schemas.WebhookInput{Name: client.Ptr(name), URL: client.Ptr(endpoint.URL + "/" + name),
			Events: client.Ptr(events), Enabled: client.Ptr(enabled), Retries: client.Ptr(0)})
		fatalIf(t, err)
		return w
	}
	alpha := create("alpha", []string{"ticket.created"}, true)
	beta := create("beta", []string{"order.*"}, true)
	gamma := create("gamma", []string{"product.updated"}, false)
	// Two deliveries to alpha, for its row's count.
	_, err := api.PublishEvents(ctx,
		schemas.Event{Resource: "ticket", Trigger: "create", ResourceID: "T-1"},
		schemas.Event{Resource: "ticket", Trigger: "create", ResourceID: "T-2"})
	fatalIf(t, err)
	waitFor(t, "alpha's 2 deliveries in the API", 30*time.Second, func() bool {
		return len(deliveriesOf(t, p, alpha.ID, client.DeliveryQuery{State: "succeeded"}).Data) == 2
	})
	b := newConsoleBrowser(t, p.base)

	b.open("/", "webhooks")
	b.waitJS("3 rows in table#webhooks", `document.querySelectorAll("table#webhooks tbody tr[data-id]").length === 3`, consoleWait)
	for _, sel := range []string{"form#filters", "#filter-name", "#filter-enabled", "#filter-event", "a#new-webhook", "#bulk-enable", "#bulk-disable", "#bulk-delete"} {
		b.present(sel)
	}
	if got := b.href("a#new-webhook"); got != "/webhooks/new" {
		b.fatalf("a#new-webhook points to %s", got)
	}
	for _, w := range []schemas.PublicWebhook{alpha, beta, gamma} {
		row := fmt.Sprintf(`table#webhooks tbody tr[data-id=%q]`, w.ID)
		if got := b.text(row + " a.name"); got != w.Name {
			b.fatalf("row %s shows name %q, want %q", w.ID, got, w.Name)
		}
		if got := b.href(row + " a.name"); got != "/webhooks/"+w.ID {
			b.fatalf("row %s links to %s", w.Name, got)
		}
		if got := evalJS[bool](b, fmt.Sprintf(`document.querySelector(%s).checked`, js(row+` input.toggle[type="checkbox"]`))); got != w.Enabled {
			b.fatalf("row %s: the enabled toggle is %v, want %v", w.Name, got, w.Enabled)
		}
		if got := b.text(row + " td.events"); !strings.Contains(got, w.Events[0]) {
			b.fatalf("row %s shows events %q, want %s", w.Name, got, w.Events[0])
		}
		for _, cell := range []string{"td.breaker", "td.success", "td.count", "td.last"} {
			b.present(row + " " + cell)
		}
	}
	alphaRow := fmt.Sprintf(`table#webhooks tbody tr[data-id=%q]`, alpha.ID)
	b.waitJS("alpha's td.count showing its 2 deliveries", fmt.Sprintf(`(c => !!c && /(^|\D)2(\D|$)/.test(c.textContent))(document.querySelector(%s))`, js(alphaRow+" td.count")), consoleWait)
	if got := b.text(alphaRow + " td.success"); !strings.Contains(got, "100") {
		b.fatalf("alpha's td.success shows %q, want 100%% (2 of 2 succeeded)", got)
	}
	b.screenshot("console-webhooks.png")

	b.click(fmt.Sprintf(`table#webhooks tbody tr[data-id=%q] input.select[type="checkbox"]`, alpha.ID))
	b.click(fmt.Sprintf(`table#webhooks tbody tr[data-id=%q] input.select[type="checkbox"]`, beta.ID))
	if n := b.count(`table#webhooks tbody input.select[type="checkbox"]:checked`); n != 2 {
		b.fatalf("%d rows are selected after two clicks, want 2", n)
	}
	b.click("#bulk-delete")
	b.waitJS("dialog#confirm to open", `(d => !!d && d.open)(document.querySelector("dialog#confirm"))`, consoleWait)
	b.present("dialog#confirm #confirm-cancel")
	if got := evalJS[int](b, `document.querySelectorAll("table#webhooks tbody tr[data-id]").length`); got != 3 {
		b.fatalf("rows went away before the confirmation: %d left", got)
	}
	b.click("dialog#confirm #confirm-ok")
	b.waitJS("alpha and beta gone from the grid, gamma left", fmt.Sprintf(
		`!document.querySelector(%s) && !document.querySelector(%s) && !!document.querySelector(%s) && document.querySelectorAll("table#webhooks tbody tr[data-id]").length === 1`,
		js(fmt.Sprintf(`table#webhooks tbody tr[data-id=%q]`, alpha.ID)), js(fmt.Sprintf(`table#webhooks tbody tr[data-id=%q]`, beta.ID)),
		js(fmt.Sprintf(`table#webhooks tbody tr[data-id=%q]`, gamma.ID))), consoleWait)
	if open := evalJS[bool](b, `(d => !!d && d.open)(document.querySelector("dialog#confirm"))`); open {
		b.fatalf("dialog#confirm is still open after #confirm-ok")
	}
	hooks := listWebhooks(t, api)
	if len(hooks) != 1 || hooks[0].ID != gamma.ID {
		t.Fatalf("after the bulk delete the API lists %+v, want only gamma", hooks)
	}
}

// TestConsoleRunsADryRunReplay: a dry run from the webhook page counts the
// events of the last hour its webhook matches, and delivers nothing; the
// replay is listed on /replays.
func TestConsoleRunsADryRunReplay(t *testing.T) {
	consoleTest(t)
	endpoint := newConsoleEndpoint(t)
	p := startServe(t, "--data-dir", t.TempDir())
	ctx := context.Background()
	api := p.api()
	// Published before the webhook exists: only a replay can reach them.
	_, err := api.PublishEvents(ctx,
		schemas.Event{Resource: "ticket", Trigger: "create", ResourceID: "T-1"},
		schemas.Event{Resource: "ticket", Trigger: "update", ResourceID: "T-1"},
		schemas.Event{Resource: "ticket", Trigger: "create", ResourceID: "T-2"},
		schemas.Event{Resource: "order", Trigger: "paid", ResourceID: "O-1"})
	fatalIf(t, err)
	waitFor(t, "the matcher to read the 4 events", 30*time.Second, func() bool {
		m, err := api.Metrics(ctx)
		return err == nil && strings.Contains(m, "hookline_matcher_events_total 4")
	})
	hook, err := api.CreateWebhook(ctx, schemas.WebhookInput{Name: client.Ptr("late tickets"), URL: client.Ptr(endpoint.URL),
		Events: client.Ptr([]string{"ticket.*"}), Retries: client.Ptr(0)})
	fatalIf(t, err)
	b := newConsoleBrowser(t, p.base)

	b.open("/webhooks/"+hook.ID, "webhook")
	for _, sel := range []string{`form#replay input[name="from"][type="datetime-local"]`, `form#replay input[name="to"][type="datetime-local"]`, "button#replay-run"} {
		b.present(sel)
	}
	if from := evalJS[string](b, `document.querySelector('form#replay input[name="from"]').value`); from == "" {
		b.fatalf("form#replay's from has no default (want one hour ago)")
	}
	b.click("button#replay-dry-run")
	b.waitJS("#replay-result done", `(r => !!r && r.getAttribute("data-state") === "done" && r.hasAttribute("data-matched"))(document.getElementById("replay-result"))`, 30*time.Second)
	if got, _ := b.attr("#replay-result", "data-matched"); got != "3" {
		b.fatalf("#replay-result has data-matched=%q, want 3 (the ticket events of the last hour)", got)
	}
	if got := b.text("#replay-result"); !strings.Contains(got, "3") {
		b.fatalf("#replay-result says %q, which does not show the 3 matched", got)
	}
	var replays struct {
		Data []schemas.PublicReplay `json:"data"`
	}
	fatalIf(t, api.Do(ctx, http.MethodGet, "/v1/replays", nil, &replays))
	if len(replays.Data) != 1 || !replays.Data[0].DryRun || replays.Data[0].Matched != 3 || replays.Data[0].Enqueued != 0 ||
		!slices.Equal(replays.Data[0].WebhookIDs, []string{hook.ID}) {
		t.Fatalf("the console's dry run made %+v, want one dry run of the webhook that matched 3", replays.Data)
	}
	replay := replays.Data[0]

	b.open("/replays", "replays")
	row := fmt.Sprintf(`table#replays tbody tr[data-id=%q]`, replay.ID)
	b.present(row)
	if got := b.text(row + " .state"); !strings.Contains(got, "done") {
		b.fatalf("the replay's row shows state %q, want done", got)
	}
	b.present(row + " progress")
	b.screenshot("console-replays.png")

	time.Sleep(500 * time.Millisecond) // time for a wrongful delivery to arrive
	if got := endpoint.received(); len(got) != 0 {
		t.Fatalf("a dry run delivered %d requests", len(got))
	}
}

// TestConsoleSignsInWithAToken: with API tokens the console asks for one,
// keeps it for the session, and shows the tenant's webhooks.
func TestConsoleSignsInWithAToken(t *testing.T) {
	consoleTest(t)
	endpoint := newConsoleEndpoint(t)
	p := startServe(t, "--data-dir", t.TempDir(), "--api-tokens", "tok1:acme")
	hook, err := client.New(p.base, "tok1", nil).CreateWebhook(context.Background(),
		schemas.WebhookInput{Name: client.Ptr("acme hook"), URL: client.Ptr(endpoint.URL)})
	fatalIf(t, err)
	b := newConsoleBrowser(t, p.base)

	b.open("/", "login")
	b.present("form#login input#token")
	if label := evalJS[string](b, `(i => i.labels && i.labels.length ? i.labels[0].textContent.trim() : "")(document.querySelector("input#token"))`); !strings.Contains(label, "API token") {
		b.fatalf("input#token is labelled %q, want API token", label)
	}
	if n := b.count(`form#login button[type="submit"], form#login button:not([type]), form#login input[type="submit"]`); n == 0 {
		b.fatalf("form#login has no submit button")
	}
	if n := b.count("table#webhooks tbody tr[data-id]"); n != 0 {
		b.fatalf("the grid shows %d webhooks before signing in", n)
	}
	b.typeText("form#login input#token", "tok1")
	b.click(`form#login button[type="submit"], form#login button:not([type]), form#login input[type="submit"]`)
	b.waitPage("webhooks")
	row := fmt.Sprintf(`table#webhooks tbody tr[data-id=%q]`, hook.ID)
	b.present(row)
	if got := b.text(row + " a.name"); got != "acme hook" {
		b.fatalf("after signing in the grid shows %q, want acme hook", got)
	}
	if tok := evalJS[string](b, `sessionStorage.getItem("hookline.token") || ""`); tok != "tok1" {
		b.fatalf("sessionStorage hookline.token is %q, want tok1", tok)
	}
	// The token lasts for the session: a reload shows the grid again.
	b.do("reloading", chromedp.Reload())
	b.waitPage("webhooks")
	b.present(row)
	if n := b.count("form#login"); n != 0 {
		b.fatalf("a reload asks for the token again")
	}
}

// TestConsoleFitsAPhone: at a phone's width the grid does not scroll
// sideways.
func TestConsoleFitsAPhone(t *testing.T) {
	consoleTest(t)
	endpoint := newConsoleEndpoint(t)
	p := startServe(t, "--data-dir", t.TempDir())
	for _, name := range []string{"billing", "a webhook with a rather long name for a small screen"} {
		_, err := p.api().CreateWebhook(context.Background(), schemas.WebhookInput{Name: client.Ptr(name),
			URL:    client.Ptr(endpoint.URL + "/a/rather/long/path/for/the/receiver/of/" + strings.ReplaceAll(name, " ", "-")),
			Events: client.Ptr([]string{"ticket.created", "ticket.updated", "order.paid"})})
		fatalIf(t, err)
	}
	b := newConsoleBrowser(t, p.base)
	b.do("emulating a phone", chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile))
	b.open("/", "webhooks")
	b.waitJS("2 rows in table#webhooks", `document.querySelectorAll("table#webhooks tbody tr[data-id]").length === 2`, consoleWait)
	if w := evalJS[int](b, `window.innerWidth`); w != 390 {
		b.fatalf("the phone's viewport is %d px wide, want 390", w)
	}
	if sw := evalJS[int](b, `document.documentElement.scrollWidth`); sw > 391 {
		hasViewport := evalJS[bool](b, `!!document.querySelector('meta[name="viewport"]')`)
		b.fatalf("at 390x844 the grid is %d px wide (document.documentElement.scrollWidth), want <= 391 (meta viewport present: %v)", sw, hasViewport)
	}
}
