package sender

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/hookline/hookline/delivery"

	"github.com/segmentio/kafka-go"

	"github.com/hookline/hookline/pipeline/records"
	"github.com/hookline/hookline/schemas"
)

// process makes one attempt of a job, if its endpoint's breaker and rate
// limit allow, and records what follows: the attempt, and a retry or a dead
// letter. It holds one of the endpoint's slots (acquire) and gives it back.
func (s *Stage) process(e *endpoint, w work) {
	start := time.Now()
	wh, ok := s.webhookByID(w.ctx, w.job.WebhookID)
	if !ok || (!wh.Enabled && !w.job.Test) {
		s.release(e, start, false, false, 0)
		s.metrics.dropped.Inc()
		s.finish(w, nil)
		return
	}
	if lim := e.rateLimiter(wh); lim != nil {
		if err := lim.Wait(w.ctx); err != nil {
			s.release(e, start, false, false, 0)
			s.abandon(w)
			return
		}
		start = time.Now()
	}
	healthy, err := s.breakers.Allow(wh.ID)
	manual := false
	if err != nil {
		// A redelivery a person asked for goes out at once, as the probe.
		probe, ok := s.manualProbe(wh.ID, w.job)
		if !ok {
			s.release(e, start, false, false, 0)
			s.putOffCircuit(e, w, wh)
			return
		}
		healthy, manual = probe, true
	}
	if s.putOffBehind(e, w, wh) {
		s.release(e, start, false, false, 0)
		healthy(!manual) // no request: it says nothing of the endpoint
		return
	}
	r := s.d.Send(w.ctx, wh, w.job)
	if w.ctx.Err() != nil {
		// The drain deadline cut the request short: it says nothing about
		// the endpoint (no failure counted, no circuit closed), and the job
		// stays uncommitted for the next run.
		s.release(e, start, false, false, 0)
		healthy(!manual)
		s.abandon(w)
		return
	}
	tooMany := r.Attempt.StatusCode == http.StatusTooManyRequests
	var pause time.Duration
	if tooMany {
		pause = RetryAfter(r.Attempt.ResponseHeaders["Retry-After"], s.now())
	}
	s.release(e, start, true, r.Outcome.Class == delivery.Retryable, pause)
	healthy(r.Outcome.Class != delivery.Retryable || tooMany)
	s.metrics.observe(r)
	s.finish(w, s.outcome(w.ctx, wh, w.job, r))
}

// resyncEvery bounds how often one unknown webhook id makes the registry
// catch up: the jobs of a deleted webhook are dropped without a wait.
const resyncEvery = 10 * time.Second

// webhookByID is the job's webhook. One this process has not seen may be
// new: the API and the matcher that made the job run elsewhere and saw it
// first. Before such a job is dropped, the registry catches up with
// hookline.subscriptions (at most once every resyncEvery per id, for at
// most 5 s) and is asked again.
func (s *Stage) webhookByID(ctx context.Context, id string) (schemas.Webhook, bool) {
	if wh, ok := s.webhooks.ByID(id); ok {
		return wh, true
	}
	now := time.Now()
	s.mu.Lock()
	last, seen := s.synced[id]
	due := !seen || now.Sub(last) >= resyncEvery
	if due {
		if len(s.synced) > 10000 { // ids of deleted webhooks; forget them now and then
			clear(s.synced)
		}
		s.synced[id] = now
	}
	s.mu.Unlock()
	if !due {
		return schemas.Webhook{}, false
	}
	syncCtx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.webhooks.Sync(syncCtx); err != nil && ctx.Err() == nil {
		s.log.Warn("could not catch up with the webhooks' topic", "webhook_id", id, "err", err)
	}
	return s.webhooks.ByID(id)
}

// outcome decides what follows an attempt and returns the messages that
// record it.
func (s *Stage) outcome(ctx context.Context, wh schemas.Webhook, job schemas.Job, r delivery.Result) []kafka.Message {
	att := r.Attempt
	if job.Attempts > 0 {
		// The first attempt's record holds the body; the history shows it
		// from there. Each retry repeating it would make every attempt
		// record as large as the payload.
		att.RequestBody = ""
	}
	succeeded := r.Outcome.Class == delivery.Succeeded
	disable := ""
	if since := s.health.note(wh.ID, succeeded, att.At); r.Outcome.DisableWebhook {
		disable = fmt.Sprintf("endpoint answered 410 Gone to delivery %s", att.DeliveryID)
	} else if !succeeded && s.failingTooLong(wh, since, att.At) {
		disable = fmt.Sprintf("every delivery failed since %s (--disable-after %s)", since.Format(time.RFC3339), s.cfg.DisableAfter)
	}
	var follow []kafka.Message
	switch {
	case succeeded:
		att.State = schemas.StateSucceeded
	case r.Outcome.Class == delivery.Retryable && job.Attempts < wh.Retries && disable == "":
		att.State = schemas.StateRetrying
		wait, tier := s.policy.Delay(job.Attempts+1, RetryAfter(att.ResponseHeaders["Retry-After"], s.now()))
		next := job
		next.Attempts++
		next.DueAt = s.now().Add(wait).UTC()
		next.Reason = schemas.RetryAfterFailure
		follow = append(follow, records.Job(s.cfg.Schedule.Topic(tier), next))
	default:
		att.State = schemas.StateFailed
		if disable != "" && wh.Enabled && s.disable(ctx, wh, disable) {
			wh.DisabledReason = disable
			follow = append(follow, s.operational(wh, job, schemas.TypeWebhookDisabled, "disabled-"+job.DeliveryID, att)...)
		}
		follow = append(follow, s.failedForGood(wh, job, att)...)
	}
	s.metrics.attempts.WithLabelValues(att.State, statusClass(att.StatusCode)).Inc()
	return append([]kafka.Message{records.Attempt(att)}, follow...)
}

// manualProbe lets the first attempt of a redelivery or a test delivery
// through an open circuit as its probe (Breakers.Probe); other jobs wait.
func (s *Stage) manualProbe(endpoint string, job schemas.Job) (func(healthy bool), bool) {
	if (job.RedeliveryOf == "" && !job.Test) || job.Attempts > 0 {
		return nil, false
	}
	return s.breakers.Probe(endpoint)
}

// putOffCircuit puts off a job whose endpoint's circuit is open: it is due
// when the circuit lets its probe through, so that a probe goes out as soon
// as the cooldown ends and the rest follow one cooldown after the endpoint
// recovers at the latest; it never fails without a request.
func (s *Stage) putOffCircuit(e *endpoint, w work, wh schemas.Webhook) {
	cooldown := s.breakers.Cooldown()
	wait := time.Until(s.breakers.OpenUntil(wh.ID))
	if wait <= 0 { // half-open, its probe out: look again soon
		wait = cooldown / 10
	}
	// Spread the followers a little, but never past the delay of the tier
	// the job goes to: a job due after its tier's delay would hold up the
	// jobs queued behind it on that tier.
	room := s.cfg.Schedule[s.cfg.Schedule.tierFor(wait)] - wait
	wait += time.Duration(float64(min(cooldown/10, max(room, 0))) * s.policy.Rand())
	now := s.now()
	e.mu.Lock()
	defer e.mu.Unlock() // written under the lock: see dispatch
	s.putOffUntil(w, wh, whyCircuit, e.deferUntil(w.job.ResourceID, now.Add(max(wait, minPutOff)), now, w.queued, s.cfg.Schedule))
}

// putOffUntil sends a job back to a retry tier without a request, due when
// p says, on its tier. Put-offs do not count against the webhook's retries. A job put off
// for room (not for its circuit) fails, recorded as an attempt that was
// never sent, once it is older than the whole retry schedule.
func (s *Stage) putOffUntil(w work, wh schemas.Webhook, why string, p putOff) {
	s.metrics.deferred.WithLabelValues(why).Inc()
	reason := schemas.RetryEndpointBusy
	if why == whyCircuit {
		reason = schemas.RetryCircuitOpen
	} else if age := s.now().Sub(w.job.CreatedAt); age > s.scheduleSpan {
		att := s.unsent(wh, w.job, fmt.Sprintf("not sent: %s for %s, longer than the retry schedule", why, age.Round(time.Second)))
		s.metrics.attempts.WithLabelValues(att.State, statusClass(0)).Inc()
		s.finish(w, append([]kafka.Message{records.Attempt(att)}, s.failedForGood(wh, w.job, att)...))
		return
	}
	next := w.job
	next.Deferrals++
	next.DueAt = p.due.UTC()
	next.Reason = reason
	s.finish(w, []kafka.Message{records.Job(s.cfg.Schedule.Topic(p.tier), next)})
}

// unsent is the record of a delivery that failed without a request.
func (s *Stage) unsent(wh schemas.Webhook, job schemas.Job, reason string) schemas.Attempt {
	body := string(job.Payload)
	if job.Attempts > 0 {
		body = "" // an earlier attempt's record holds it
	}
	return schemas.Attempt{
		DeliveryID: job.DeliveryID, WebhookID: job.WebhookID, Tenant: job.Tenant,
		EventIDs: job.EventIDs, EventType: job.EventType, N: job.Attempts + 1,
		State: schemas.StateFailed, At: s.now().UTC(), DeliveryCreatedAt: job.CreatedAt,
		Error: reason, URL: wh.URL, RequestBody: body,
		RedeliveryOf: job.RedeliveryOf, ReplayID: job.ReplayID,
	}
}

// failingTooLong reports whether a webhook whose endpoint has failed since
// since is to be disabled at at: every attempt failed for DisableAfter,
// counted from the webhook's last change at the earliest (a user who
// enables it again, or changes its URL, starts the clock again).
func (s *Stage) failingTooLong(wh schemas.Webhook, since, at time.Time) bool {
	if since.IsZero() {
		return false
	}
	if wh.UpdatedAt.After(since) {
		since = wh.UpdatedAt
	}
	return at.Sub(since) >= s.cfg.DisableAfter
}

// disable turns a webhook off, for a 410 Gone or for failing too long,
// and reports whether it did (not when another lane or a person did
// first: one hookline.webhook_disabled per disabling).
func (s *Stage) disable(ctx context.Context, wh schemas.Webhook, reason string) bool {
	changed, err := s.webhooks.DisableWebhook(ctx, wh.ID, reason)
	if err != nil {
		s.log.Error("could not disable webhook", "webhook_id", wh.ID, "reason", reason, "err", err)
		return false
	}
	if !changed {
		return false
	}
	s.metrics.disabled.Inc()
	s.log.Warn("webhook disabled", "webhook_id", wh.ID, "reason", reason)
	return true
}

// failedForGood is what follows a delivery's last attempt when it failed:
// its dead letter and a hookline.delivery_failed event.
func (s *Stage) failedForGood(wh schemas.Webhook, job schemas.Job, att schemas.Attempt) []kafka.Message {
	return append([]kafka.Message{records.DeadJob(job, att)},
		s.operational(wh, job, schemas.TypeDeliveryFailed, "failed-"+job.DeliveryID, att)...)
}

// operational is the Hookline event of a delivery that failed for good or
// a webhook disabled (SPEC §4), on hookline.events for the webhooks of the
// tenant that name it. A delivery of such an event makes none: a failure
// to deliver one never loops. Its id derives from the delivery, so a job
// handled again after a crash publishes the same event.
func (s *Stage) operational(wh schemas.Webhook, job schemas.Job, typ, id string, att schemas.Attempt) []kafka.Message {
	if strings.HasPrefix(job.EventType, schemas.OperationalResource+".") {
		return nil
	}
	data, err := records.Marshal(map[string]any{
		"webhook_id": wh.ID, "webhook_name": wh.Name, "url": wh.URL, "delivery_id": job.DeliveryID,
		"event_type": job.EventType, "event_ids": job.EventIDs, "attempts": att.N,
		"status_code": att.StatusCode, "error": att.Error, "disabled_reason": wh.DisabledReason,
	})
	if err != nil {
		return nil
	}
	_, trigger, _ := strings.Cut(typ, ".")
	return []kafka.Message{records.Event(schemas.Event{
		ID: "hookline-" + id, Type: typ, Resource: schemas.OperationalResource, Trigger: trigger,
		ResourceID: wh.ID, Tenant: job.Tenant, OccurredAt: s.now().UTC(), Data: data,
	})}
}

// finish hands a job's output to the outbox; the job is done once the
// output is written. No output marks it done at once.
func (s *Stage) finish(w work, msgs []kafka.Message) { w.out.Emit(msgs, w.in) }

// abandon gives a job up unfinished: it is read again later.
func (s *Stage) abandon(w work) { w.in.Abandon() }

func statusClass(code int) string {
	if code < 100 || code > 599 {
		return "error"
	}
	return fmt.Sprintf("%dxx", code/100)
}
