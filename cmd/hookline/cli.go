package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/hookline/hookline/client"
	"github.com/hookline/hookline/projections"
	"github.com/hookline/hookline/schemas"
	"github.com/schollz/progressbar/v3"
)

// This file holds the API client commands: deliveries, redeliver, replay.

// apiFlags are the flags every API client command takes.
type apiFlags struct {
	api     string
	token   string
	timeout time.Duration
}

func addAPIFlags(fs *flag.FlagSet, timeout time.Duration) *apiFlags {
	a := &apiFlags{}
	fs.StringVar(&a.api, "api", "http://127.0.0.1:8080", "base URL of the Hookline API")
	fs.StringVar(&a.token, "token", "", "API token, sent as Authorization: Bearer")
	fs.DurationVar(&a.timeout, "timeout", timeout, "how long the command may take, waiting included")
	return a
}

func (a *apiFlags) client() *client.Client { return client.New(a.api, a.token, nil) }

// usageError is a bad combination of flags: the command exits 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// timeFlag is an optional RFC 3339 time flag.
type timeFlag struct{ t time.Time }

func (f *timeFlag) String() string {
	if f == nil || f.t.IsZero() {
		return ""
	}
	return f.t.Format(time.RFC3339Nano)
}

func (f *timeFlag) Set(s string) error {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return fmt.Errorf("want an RFC 3339 time like 2024-05-01T12:00:00Z")
	}
	f.t = t
	return nil
}

// offsetsFlag is partition:offset pairs, comma separated: 0:120,1:98.
type offsetsFlag map[string]int64

func (f *offsetsFlag) String() string {
	if f == nil {
		return ""
	}
	var parts []string
	for p, o := range *f {
		parts = append(parts, p+":"+strconv.FormatInt(o, 10))
	}
	return strings.Join(parts, ",")
}

func (f *offsetsFlag) Set(s string) error {
	m := map[string]int64{}
	for _, pair := range strings.Split(s, ",") {
		p, o, ok := strings.Cut(strings.TrimSpace(pair), ":")
		pn, err1 := strconv.Atoi(p)
		on, err2 := strconv.ParseInt(o, 10, 64)
		if !ok || err1 != nil || err2 != nil || pn < 0 || on < 0 {
			return fmt.Errorf("want partition:offset pairs like 0:120,1:98, not %q", pair)
		}
		m[strconv.Itoa(pn)] = on
	}
	*f = m
	return nil
}

type deliveriesConfig struct {
	*apiFlags
	webhook, state, eventType, status string
	since, until                      timeFlag
	limit                             int
}

func deliveriesFlags(fs *flag.FlagSet) func(ctx context.Context, stdout, stderr io.Writer) error {
	c := &deliveriesConfig{apiFlags: addAPIFlags(fs, time.Minute)}
	fs.StringVar(&c.webhook, "webhook", "", "webhook id (required)")
	fs.StringVar(&c.state, "state", "", "only deliveries in this state: pending, succeeded, retrying, failed")
	fs.StringVar(&c.eventType, "event-type", "", "only deliveries of this event type")
	fs.StringVar(&c.status, "status", "", "only deliveries whose last status is this code (503), class (5xx) or error")
	fs.Var(&c.since, "since", "only deliveries created at or after this RFC 3339 time")
	fs.Var(&c.until, "until", "only deliveries created before this RFC 3339 time")
	fs.IntVar(&c.limit, "limit", 50, "most rows to print")
	return func(ctx context.Context, stdout, stderr io.Writer) error { return listDeliveries(ctx, c, stdout) }
}

// listDeliveries prints a webhook's delivery history, newest first, as a
// table, following next_cursor up to --limit rows.
func listDeliveries(ctx context.Context, c *deliveriesConfig, stdout io.Writer) error {
	if c.webhook == "" {
		return usagef("--webhook is required")
	}
	if c.limit < 1 {
		return usagef("--limit must be at least 1")
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cl := c.client()
	var rows []projections.Delivery
	cursor := ""
	for len(rows) < c.limit {
		page, err := cl.Deliveries(ctx, c.webhook, client.DeliveryQuery{State: c.state, EventType: c.eventType, Status: c.status,
			Since: c.since.t, Until: c.until.t, Limit: min(c.limit-len(rows), 500), Cursor: cursor})
		if err != nil {
			return err
		}
		rows = append(rows, page.Data...)
		if cursor = page.NextCursor; cursor == "" {
			break
		}
	}
	return printDeliveries(stdout, rows[:min(len(rows), c.limit)])
}

// printDeliveries writes the aligned table of deliveries.
func printDeliveries(w io.Writer, rows []projections.Delivery) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tCREATED\tEVENT TYPE\tSTATE\tATTEMPTS\tLAST STATUS\tNEXT ATTEMPT\tREDELIVERY OF/REPLAY")
	for _, d := range rows {
		status, next, origin := "-", "-", "-"
		if d.LastStatusCode != 0 {
			status = strconv.Itoa(d.LastStatusCode)
		}
		if d.NextAttemptAt != nil {
			next = d.NextAttemptAt.UTC().Format(time.RFC3339)
		}
		switch {
		case d.RedeliveryOf != "":
			origin = d.RedeliveryOf
		case d.ReplayID != "":
			origin = "replay " + d.ReplayID
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\t%s\n", d.ID, d.CreatedAt.UTC().Format(time.RFC3339),
			d.EventType, d.State, d.AttemptCount, status, next, origin)
	}
	return tw.Flush()
}

type redeliverConfig struct {
	*apiFlags
	delivery, webhook string
	force, failed     bool
	since, until      timeFlag
	wait              bool
}

func redeliverFlags(fs *flag.FlagSet) func(ctx context.Context, stdout, stderr io.Writer) error {
	c := &redeliverConfig{apiFlags: addAPIFlags(fs, 5*time.Minute)}
	fs.StringVar(&c.delivery, "delivery", "", "redeliver this delivery")
	fs.BoolVar(&c.force, "force", false, "with --delivery: redeliver even if it did not fail")
	fs.StringVar(&c.webhook, "webhook", "", "with --failed: the webhook whose failed deliveries to redeliver")
	fs.BoolVar(&c.failed, "failed", false, "with --webhook: redeliver every failed delivery not yet redelivered")
	fs.Var(&c.since, "since", "with --failed: only deliveries created at or after this RFC 3339 time")
	fs.Var(&c.until, "until", "with --failed: only deliveries created before this RFC 3339 time")
	fs.BoolVar(&c.wait, "wait", true, "wait until the new deliveries succeed or fail, showing progress")
	return func(ctx context.Context, stdout, stderr io.Writer) error { return runRedeliver(ctx, c, stdout, stderr) }
}

// runRedeliver enqueues one redelivery or every failed one of a webhook, then
// (with --wait) follows the new deliveries to their end.
func runRedeliver(ctx context.Context, c *redeliverConfig, stdout, stderr io.Writer) error {
	single := c.delivery != ""
	switch {
	case single && (c.webhook != "" || c.failed || !c.since.t.IsZero() || !c.until.t.IsZero()):
		return usagef("--delivery cannot be combined with --webhook, --failed, --since or --until")
	case !single && (c.webhook == "" || !c.failed):
		return usagef("give --delivery ID, or --webhook ID --failed")
	case !single && c.force:
		return usagef("--force goes with --delivery")
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	cl := c.client()
	var ids []string
	if single {
		d, err := cl.Redeliver(ctx, c.delivery, c.force)
		if err != nil {
			return err
		}
		ids = []string{d.ID}
		fmt.Fprintln(stdout, d.ID)
	} else {
		out, err := cl.RedeliverFailed(ctx, c.webhook, c.since.t, c.until.t)
		if err != nil {
			return err
		}
		ids = out.DeliveryIDs
		fmt.Fprintf(stdout, "redelivering %d failed deliveries\n", out.Count)
	}
	if !c.wait || len(ids) == 0 {
		return nil
	}
	return waitDeliveries(ctx, cl, ids, stdout, stderr)
}

// waitDeliveries polls each delivery until it succeeded or failed, with a
// progress bar of the finished ones on stderr.
func waitDeliveries(ctx context.Context, cl *client.Client, ids []string, stdout, stderr io.Writer) error {
	// The rate is ours, over the whole wait: the bar's own divides a jump
	// of the first poll by the milliseconds since the bar was made.
	start := time.Now()
	bar := progressbar.NewOptions(len(ids), progressbar.OptionSetWriter(stderr),
		progressbar.OptionSetDescription("redeliveries"), progressbar.OptionShowCount(),
		progressbar.OptionThrottle(100*time.Millisecond))
	pending := append([]string(nil), ids...)
	succeeded, failed := 0, 0
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for len(pending) > 0 {
		select {
		case <-ctx.Done():
			return fmt.Errorf("stopped waiting with %d of %d redeliveries unfinished: %w", len(pending), len(ids), ctx.Err())
		case <-tick.C:
		}
		var still []string
		for _, id := range pending {
			d, err := cl.Delivery(ctx, id)
			var ae *client.Error
			switch {
			case errors.As(err, &ae) && ae.Status == http.StatusNotFound: // not recorded yet
				still = append(still, id)
			case err != nil && ctx.Err() != nil:
				still = append(still, id)
			case err != nil:
				return err
			case d.State == "succeeded":
				succeeded++
			case d.State == "failed":
				failed++
			default:
				still = append(still, id)
			}
		}
		pending = still
		bar.Describe("redeliveries, " + rate(succeeded+failed, start, "deliveries"))
		bar.Set(succeeded + failed)
	}
	fmt.Fprintln(stderr)
	fmt.Fprintf(stdout, "%d succeeded, %d failed\n", succeeded, failed)
	if failed > 0 {
		return fmt.Errorf("%d of %d redeliveries failed", failed, len(ids))
	}
	return nil
}

type replayConfig struct {
	*apiFlags
	webhooks              string
	fromTime, toTime      timeFlag
	fromOffsets, toOffset offsetsFlag
	dryRun                bool
	cancel                string
}

func replayFlags(fs *flag.FlagSet) func(ctx context.Context, stdout, stderr io.Writer) error {
	c := &replayConfig{apiFlags: addAPIFlags(fs, 10*time.Minute)}
	fs.StringVar(&c.webhooks, "webhook", "", "webhook ids to replay into, comma separated")
	fs.Var(&c.fromTime, "from-time", "replay events from this RFC 3339 time")
	fs.Var(&c.fromOffsets, "from-offsets", "replay events from these partition:offset pairs (0:120,1:98)")
	fs.Var(&c.toTime, "to-time", "replay events before this RFC 3339 time (default: the end)")
	fs.Var(&c.toOffset, "to-offsets", "replay events before these partition:offset pairs")
	fs.BoolVar(&c.dryRun, "dry-run", false, "count the matches without delivering")
	fs.StringVar(&c.cancel, "cancel", "", "cancel the running replay with this id instead")
	return func(ctx context.Context, stdout, stderr io.Writer) error { return runReplay(ctx, c, stdout, stderr) }
}

// replayRequest builds the body of POST /v1/replays from the flags.
func replayRequest(c *replayConfig) (schemas.ReplayRequest, error) {
	var ids []string
	for _, id := range strings.Split(c.webhooks, ",") {
		if id = strings.TrimSpace(id); id != "" {
			ids = append(ids, id)
		}
	}
	if len(ids) == 0 {
		return schemas.ReplayRequest{}, usagef("--webhook is required (or --cancel REPLAY_ID)")
	}
	from, err := position("from", c.fromTime, c.fromOffsets)
	if err != nil || from == nil {
		return schemas.ReplayRequest{}, usagef("give one of --from-time or --from-offsets")
	}
	to, err := position("to", c.toTime, c.toOffset)
	if err != nil {
		return schemas.ReplayRequest{}, err
	}
	return schemas.ReplayRequest{WebhookIDs: ids, From: from, To: to, DryRun: c.dryRun}, nil
}

func position(name string, t timeFlag, offsets offsetsFlag) (*schemas.ReplayPosition, error) {
	switch {
	case !t.t.IsZero() && len(offsets) > 0:
		return nil, usagef("--%s-time and --%s-offsets are exclusive", name, name)
	case !t.t.IsZero():
		return &schemas.ReplayPosition{Time: &t.t}, nil
	case len(offsets) > 0:
		return &schemas.ReplayPosition{Offsets: map[string]int64(offsets)}, nil
	}
	return nil, nil
}

// runReplay starts a replay (or cancels one with --cancel) and follows it to
// its end with a progress bar of the events scanned.
func runReplay(ctx context.Context, c *replayConfig, stdout, stderr io.Writer) error {
	cl := c.client()
	if c.cancel != "" {
		if c.webhooks != "" || c.dryRun || !c.fromTime.t.IsZero() || len(c.fromOffsets) > 0 {
			return usagef("--cancel takes no other replay flags")
		}
		rp, err := cl.CancelReplay(ctx, c.cancel)
		if err != nil {
			return err
		}
		fmt.Fprintf(stdout, "replay %s %s: scanned %d, matched %d, enqueued %d\n", rp.ID, rp.State, rp.Scanned, rp.Matched, rp.Enqueued)
		return nil
	}
	req, err := replayRequest(c)
	if err != nil {
		return err
	}
	rp, err := cl.CreateReplay(ctx, req)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "replay %s started\n", rp.ID)
	return followReplay(ctx, cl, rp, c.timeout, stdout, stderr)
}

// followReplay polls the replay every 200 ms until it is over. On Ctrl-C it
// stops and names the replay, which goes on running.
func followReplay(ctx context.Context, cl *client.Client, rp schemas.PublicReplay, timeout time.Duration, stdout, stderr io.Writer) error {
	var total int64
	for _, p := range rp.Partitions {
		total += max(p.End-p.Start, 0)
	}
	if total == 0 {
		total = -1 // unknown: a spinner
	}
	bar := progressbar.NewOptions64(total, progressbar.OptionSetWriter(stderr), progressbar.OptionShowCount(),
		progressbar.OptionThrottle(100*time.Millisecond))
	start := rp.CreatedAt // the replay's own time: its rate over its whole run
	pollCtx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for rp.State == "running" {
		bar.Describe(fmt.Sprintf("matched %d, enqueued %d, %s", rp.Matched, rp.Enqueued, rate(int(rp.Scanned), start, "events")))
		bar.Set64(rp.Scanned)
		select {
		case <-pollCtx.Done():
			fmt.Fprintln(stderr)
			if ctx.Err() != nil {
				fmt.Fprintf(stdout, "stopped following replay %s; it goes on: GET /v1/replays/%s\n", rp.ID, rp.ID)
				return nil
			}
			return fmt.Errorf("replay %s still running after --timeout %v: GET /v1/replays/%s", rp.ID, timeout, rp.ID)
		case <-tick.C:
		}
		next, err := cl.Replay(pollCtx, rp.ID)
		switch {
		case err == nil:
			rp = next
		case pollCtx.Err() == nil:
			return err
		}
	}
	bar.Describe(fmt.Sprintf("matched %d, enqueued %d", rp.Matched, rp.Enqueued))
	if rp.State == "done" {
		bar.Finish()
	} else {
		bar.Set64(rp.Scanned)
	}
	fmt.Fprintln(stderr)
	fmt.Fprintf(stdout, "replay %s %s: scanned %d, matched %d, enqueued %d\n", rp.ID, rp.State, rp.Scanned, rp.Matched, rp.Enqueued)
	if rp.State == "failed" {
		return fmt.Errorf("replay %s failed: %s", rp.ID, rp.Error)
	}
	return nil
}

// rate formats n things done since start as a rate per second, over at
// least a second so that a first jump is not divided by milliseconds.
func rate(n int, start time.Time, what string) string {
	secs := max(time.Since(start).Seconds(), 1)
	return fmt.Sprintf("%.0f %s/s", float64(n)/secs, what)
}
