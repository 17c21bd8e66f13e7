package sender

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/schemas"
)

// Group is the sender's consumer group.
const Group = "hookline-sender"

// maxInFlight bounds concurrent requests of one sender.
const maxInFlight = 256

// Webhooks is the webhook state the sender reads at send time, so that a
// change of URL or secret applies to jobs already queued.
type Webhooks interface {
	ByID(id string) (schemas.Webhook, bool)
}

// Stage runs the sender as a consumer of hookline.deliveries.
type Stage struct {
	d        *Deliverer
	webhooks Webhooks
	reader   *kafka.Reader
	attempts *kafka.Writer
	dead     *kafka.Writer
	log      *slog.Logger
}

// NewStage wires the sender to the broker.
func NewStage(b *broker.Broker, webhooks Webhooks, cfg Config, log *slog.Logger) (*Stage, error) {
	log = log.With("stage", "sender")
	d, err := NewDeliverer(cfg, nil, time.Now, log)
	if err != nil {
		return nil, err
	}
	return &Stage{
		d: d, webhooks: webhooks, log: log,
		reader:   b.GroupReader(schemas.TopicDeliveries, Group),
		attempts: b.Writer(schemas.TopicAttempts),
		dead:     b.Writer(schemas.TopicDead),
	}, nil
}

// Run consumes until ctx is cancelled, then finishes the deliveries in
// flight.
func (s *Stage) Run(ctx context.Context) error {
	err := broker.Consume(ctx, s.reader, broker.ConsumeConfig{Name: "sender", MaxBatch: 1000}, s.handle, s.log)
	s.reader.Close()
	s.attempts.Close()
	s.dead.Close()
	return err
}

// handle delivers a batch: jobs of one webhook one after another, in order,
// different webhooks concurrently. It returns nil once every attempt is
// produced.
func (s *Stage) handle(ctx context.Context, msgs []kafka.Message) error {
	var dead []kafka.Message
	byWebhook := map[string][]schemas.Job{}
	var order []string
	for _, m := range msgs {
		var job schemas.Job
		if err := json.Unmarshal(m.Value, &job); err != nil || job.DeliveryID == "" || job.WebhookID == "" {
			dead = append(dead, broker.DeadLetter(m, fmt.Sprintf("delivery job is not valid: %v", err)))
			continue
		}
		if _, ok := byWebhook[job.WebhookID]; !ok {
			order = append(order, job.WebhookID)
		}
		byWebhook[job.WebhookID] = append(byWebhook[job.WebhookID], job)
	}

	results := make([][]Result, len(order))
	sem := make(chan struct{}, maxInFlight)
	var wg sync.WaitGroup
	for i, id := range order {
		wh, ok := s.webhooks.ByID(id)
		if !ok || !wh.Enabled {
			s.log.Info("dropping jobs of a deleted or disabled webhook", "webhook_id", id, "jobs", len(byWebhook[id]))
			continue
		}
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer func() { <-sem; wg.Done() }()
			for _, job := range byWebhook[id] {
				results[i] = append(results[i], s.d.Send(ctx, wh, job))
			}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return fmt.Errorf("sender: interrupted: %w", ctx.Err())
	}

	var out []kafka.Message
	for i, rs := range results {
		for j, r := range rs {
			value, err := json.Marshal(r.Attempt)
			if err != nil {
				return fmt.Errorf("sender: encode attempt: %w", err)
			}
			out = append(out, kafka.Message{Key: []byte(r.Attempt.DeliveryID), Value: value})
			if r.Attempt.State == schemas.StateFailed {
				dead = append(dead, failedLetter(byWebhook[order[i]][j], r.Attempt))
			}
		}
	}
	if err := broker.Write(ctx, s.attempts, out); err != nil {
		return err
	}
	return broker.Write(ctx, s.dead, dead)
}

// failedLetter saves a delivery that failed for good, with its last request
// and response, on hookline.dead.
func failedLetter(job schemas.Job, last schemas.Attempt) kafka.Message {
	reason := fmt.Sprintf("delivery failed after %d attempt(s): status %d", last.N, last.StatusCode)
	if last.Error != "" {
		reason += ": " + last.Error
	}
	if last.StatusCode != 0 {
		reason += " " + http.StatusText(last.StatusCode)
	}
	value, _ := json.Marshal(schemas.DeadLetter{Reason: reason, At: last.At, Job: &job, LastAttempt: &last})
	return kafka.Message{Key: []byte(job.WebhookID), Value: value}
}
