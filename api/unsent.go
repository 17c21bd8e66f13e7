package api

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/hookline/hookline/projections"
	"github.com/hookline/hookline/schemas"
)

// Failures writes deliveries failed without a request.
type Failures interface {
	// PublishFailures writes, for each failure, its attempt record to
	// hookline.attempts, durably, or returns an error.
	PublishFailures(ctx context.Context, failed []Failure) error
}

// Failure is one delivery failed without a request: the attempt record
// that fails it.
type Failure struct {
	Attempt schemas.Attempt
}

// The errors of a delivery failed unsent because its webhook was disabled
// or deleted while it waited (SPEC §4). The sender writes the same ones,
// with the same n, when such a job comes back to it.
const (
	errWebhookDisabled = "webhook_disabled"
	errWebhookDeleted  = "webhook_deleted"
)

// Bounds of the sweeps that fail a webhook's waiting deliveries.
const (
	// sweepWorkers sweep at once: a bulk disable of a thousand webhooks
	// queues a thousand sweeps, not a thousand goroutines.
	sweepWorkers = 2
	// sweepSettle is how long a sweep waits after the change: a request
	// in flight when the webhook changed is answered and its attempt
	// stored by then. Its record has the n a sweep would give its
	// delivery, and an earlier at, so a sweep that came first would hide
	// its real outcome.
	sweepSettle = time.Second
	// sweepTimeout bounds one sweep; what it did not reach is failed by
	// the sender when it comes back.
	sweepTimeout = 10 * time.Minute
	// sweepPage is the store's largest page.
	sweepPage = 500
	// A sweep writes at most sweepBatch failures, and about
	// sweepBatchBytes of payloads, at a time.
	sweepBatch      = 100
	sweepBatchBytes = 4 << 20
)

// errWebhookBack stops a sweep of a disabled webhook that is enabled again
// (or deleted, which sweeps it again) before the sweep is done.
var errWebhookBack = errors.New("the webhook is no longer disabled")

// sweep is a webhook whose waiting deliveries are to be failed.
type sweep struct {
	tenant, webhookID string
	url               string // the webhook's, for a delivery whose records name none
	reason            string // errWebhookDisabled or errWebhookDeleted
	// at is when the webhook was changed: a delivery created since is
	// not one that waited through the change.
	at time.Time
	// queued is when the sweep was asked for (the machine's clock, for
	// sweepSettle).
	queued time.Time
}

// sweeper fails, in the history, the deliveries that wait on a webhook that
// the API disabled or deleted (SPEC §4): the pending and retrying ones get
// an attempt record failed webhook_disabled / webhook_deleted, and a dead
// letter, as the sender would write when each comes back (after its retry
// tier's delay: up to hours).
//
// All of it runs in the background, after the change is durable, never in
// the request:
//   - the store's state filter is not indexed (the embedded store walks the
//     webhook's whole history for it), so even a first page can take
//     seconds, and a large backlog minutes;
//   - the history is a projection, a quarter of a second behind the topic,
//     so failing a first page before answering would not make it visible
//     in the answer's wake anyway;
//   - nothing depends on it: the sender fails every one of these jobs,
//     with the same n and error, when it comes back. A sweep lost to a
//     crash or a shutdown only leaves them looking alive until then.
//
// Sweeps queue, one per webhook (a later change of a queued webhook is
// folded into its sweep), and run on at most sweepWorkers goroutines,
// which exist only while there is work; each sweep has its own context of
// sweepTimeout. shutdown drops what is queued and waits for what runs.
type sweeper struct {
	webhooks Webhooks
	store    Deliveries
	out      Failures
	log      *slog.Logger
	now      func() time.Time
	settle   time.Duration // sweepSettle; tests shorten it

	mu      sync.Mutex // guards the fields below
	queue   []sweep
	running int // workers
	closed  bool
	cut     bool                          // shutdown's deadline passed: running sweeps are cancelled
	stop    chan struct{}                 // closed by shutdown: settle waits end
	cancels map[*sweep]context.CancelFunc // of the sweeps running
	wg      sync.WaitGroup                // the workers
}

func newSweeper(webhooks Webhooks, store Deliveries, out Failures, log *slog.Logger, now func() time.Time) *sweeper {
	return &sweeper{webhooks: webhooks, store: store, out: out, log: log, now: now, settle: sweepSettle,
		stop: make(chan struct{}), cancels: map[*sweep]context.CancelFunc{}}
}

// enqueue asks for a sweep, starting a worker if there is room for one.
func (w *sweeper) enqueue(sw sweep) {
	sw.queued = time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		w.log.Warn("api: shutting down: waiting deliveries left to the sender", "tenant", sw.tenant, "webhook_id", sw.webhookID, "error", sw.reason)
		return
	}
	for i := range w.queue {
		if q := &w.queue[i]; q.tenant == sw.tenant && q.webhookID == sw.webhookID {
			// The later change decides: a deletion after a disable fails
			// what waits as webhook_deleted, as the sender would.
			q.reason, q.url, q.at = sw.reason, sw.url, sw.at
			return
		}
	}
	w.queue = append(w.queue, sw)
	if w.running < sweepWorkers {
		w.running++
		w.wg.Add(1)
		go w.work()
	}
}

// work runs queued sweeps until none is left.
func (w *sweeper) work() {
	defer w.wg.Done()
	for {
		sw, ok := w.next()
		if !ok {
			return
		}
		if wait := time.Until(sw.queued.Add(w.settle)); wait > 0 {
			t := time.NewTimer(wait)
			select {
			case <-t.C:
			case <-w.stop:
				t.Stop()
				continue // next sees the sweeper closed
			}
		}
		w.run(sw)
	}
}

// next takes the oldest queued sweep; false ends the worker.
func (w *sweeper) next() (sweep, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed || len(w.queue) == 0 {
		w.running--
		return sweep{}, false
	}
	sw := w.queue[0]
	w.queue = w.queue[1:]
	return sw, true
}

// run does one sweep under its own context, which shutdown cancels once
// its deadline has passed, and logs how many deliveries it failed.
func (w *sweeper) run(sw sweep) {
	ctx, cancel := context.WithTimeout(context.Background(), sweepTimeout)
	defer cancel()
	w.mu.Lock()
	w.cancels[&sw] = cancel
	if w.cut {
		cancel()
	}
	w.mu.Unlock()
	defer func() {
		w.mu.Lock()
		delete(w.cancels, &sw)
		w.mu.Unlock()
	}()
	start := time.Now()
	n, err := w.failWaiting(ctx, sw)
	attrs := []any{"tenant", sw.tenant, "webhook_id", sw.webhookID, "error", sw.reason, "failed", n, "took", time.Since(start).Round(time.Millisecond)}
	switch {
	case errors.Is(err, errWebhookBack):
		w.log.Info("api: stopped failing waiting deliveries: the webhook is no longer disabled; the sender fails the rest as they come back", attrs...)
	case err != nil:
		w.log.Error("api: failing waiting deliveries failed; the sender fails the rest as they come back", append(attrs, "err", err)...)
	default:
		w.log.Info("api: waiting deliveries failed", attrs...)
	}
}

// failWaiting fails every delivery of the sweep's webhook that is pending
// or retrying, and returns how many it failed.
func (w *sweeper) failWaiting(ctx context.Context, sw sweep) (int, error) {
	failed := 0
	var batch []Failure
	bytes := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		if !w.stillOff(sw) {
			return errWebhookBack
		}
		if err := w.out.PublishFailures(ctx, batch); err != nil {
			return fmt.Errorf("publish %d failures: %w", len(batch), err)
		}
		failed += len(batch)
		batch, bytes = batch[:0], 0
		return nil
	}
	for _, state := range []string{schemas.StatePending, schemas.StateRetrying} {
		q := projections.DeliveryQuery{Tenant: sw.tenant, WebhookID: sw.webhookID, State: state, Until: sw.at, Limit: sweepPage}
		for {
			if !w.stillOff(sw) {
				return failed, errWebhookBack
			}
			page, err := w.store.ListDeliveries(ctx, q)
			if err != nil {
				return failed, fmt.Errorf("list %s deliveries: %w", state, err)
			}
			for _, d := range page.Deliveries {
				f, ok, err := w.failure(ctx, sw, d.ID)
				if err != nil {
					return failed, err
				}
				if !ok {
					continue
				}
				batch = append(batch, f)
				if bytes += len(f.Attempt.RequestBody); len(batch) >= sweepBatch || bytes >= sweepBatchBytes {
					if err := flush(); err != nil {
						return failed, err
					}
				}
			}
			if err := flush(); err != nil {
				return failed, err
			}
			if page.NextCursor == "" {
				break
			}
			q.Cursor = page.NextCursor
		}
	}
	return failed, nil
}

// stillOff reports whether the sweep's reason still holds: a deleted
// webhook never comes back, a disabled one may be enabled again, and then
// what waits for it since before is the sender's to fail (it knows when
// each job was written; the store knows only when it was created).
func (w *sweeper) stillOff(sw sweep) bool {
	if sw.reason == errWebhookDeleted {
		return true
	}
	wh, ok := w.webhooks.Webhook(sw.tenant, sw.webhookID)
	return ok && !wh.Enabled
}

// failure is the failure of one delivery of the sweep, read again in full
// (with its request body, which a first attempt's record carries); false
// for one that no longer waits, or that the sender would still send.
func (w *sweeper) failure(ctx context.Context, sw sweep, id string) (Failure, bool, error) {
	d, err := w.store.GetDelivery(ctx, sw.tenant, id)
	switch {
	case errors.Is(err, projections.ErrNotFound):
		return Failure{}, false, nil // dropped by retention meanwhile
	case err != nil:
		return Failure{}, false, fmt.Errorf("get delivery %s: %w", id, err)
	case d.WebhookID != sw.webhookID || !projections.Waiting(d.State):
		return Failure{}, false, nil
	case sw.reason == errWebhookDisabled && d.EventType == schemas.PingEventType:
		// A test delivery goes to a disabled webhook too. (One given
		// another event type cannot be told apart in the history: it is
		// failed here, and its next attempt, made later with the same n,
		// replaces that record.)
		return Failure{}, false, nil
	}
	return unsentFailure(d, sw.tenant, sw.url, sw.reason, w.now()), true, nil
}

// unsentFailure fails d without a request, as the sender does when the job
// comes back (failUnsent): attempt n is its attempt count plus one, failed
// with reason and no status. Its dead letter is the sender's, written when
// it meets the job (with the job as it is, which the history could only
// rebuild in part).
func unsentFailure(d projections.Delivery, tenant, url, reason string, now time.Time) Failure {
	att := schemas.Attempt{
		DeliveryID: d.ID, WebhookID: d.WebhookID, Tenant: tenant, EventIDs: d.EventIDs, EventType: d.EventType,
		N: d.AttemptCount + 1, State: schemas.StateFailed, At: now.UTC(), DeliveryCreatedAt: d.CreatedAt.UTC(),
		Error: reason, URL: cmp.Or(d.URL, url), RedeliveryOf: d.RedeliveryOf, ReplayID: d.ReplayID,
	}
	if d.AttemptCount == 0 && bodyStored(d) {
		att.RequestBody = d.Request.Body // as the sender's first attempt record has it
	}
	return Failure{Attempt: att}
}

// shutdown drops the sweeps not started, waits for those running until ctx
// ends, then cuts them and waits for them to return.
func (w *sweeper) shutdown(ctx context.Context) error {
	w.mu.Lock()
	dropped := len(w.queue)
	if !w.closed {
		w.closed = true
		close(w.stop)
		w.queue = nil
	}
	w.mu.Unlock()
	if dropped > 0 {
		w.log.Warn("api: shutting down: waiting deliveries of webhooks not swept yet are left to the sender", "webhooks", dropped)
	}
	done := make(chan struct{})
	go func() {
		w.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
	}
	w.mu.Lock()
	w.cut = true
	for _, cancel := range w.cancels {
		cancel()
	}
	w.mu.Unlock()
	<-done
	return ctx.Err()
}
