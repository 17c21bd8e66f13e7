package main

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/segmentio/kafka-go"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/schemas"
)

// eventPublisher writes API-published events to hookline.events, keyed by
// resource id so that one resource's events stay in order.
type eventPublisher struct {
	w *kafka.Writer
}

func newEventPublisher(b *broker.Broker) *eventPublisher {
	return &eventPublisher{w: b.Writer(schemas.TopicEvents)}
}

func (p *eventPublisher) PublishEvents(ctx context.Context, evs []schemas.Event) error {
	msgs := make([]kafka.Message, len(evs))
	for i, ev := range evs {
		value, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("encode event %s: %w", ev.ID, err)
		}
		msgs[i] = kafka.Message{Key: []byte(ev.ResourceID), Value: value}
	}
	return broker.Write(ctx, p.w, msgs)
}

func (p *eventPublisher) Close() error { return p.w.Close() }

// jobPublisher enqueues redeliveries on hookline.deliveries, keyed by
// webhook id like the matcher's jobs.
type jobPublisher struct {
	w *kafka.Writer
}

func (p *jobPublisher) PublishJobs(ctx context.Context, jobs []schemas.Job) error {
	msgs := make([]kafka.Message, len(jobs))
	for i, job := range jobs {
		value, err := json.Marshal(job)
		if err != nil {
			return fmt.Errorf("encode job %s: %w", job.DeliveryID, err)
		}
		msgs[i] = kafka.Message{Key: []byte(job.WebhookID), Value: value}
	}
	return broker.Write(ctx, p.w, msgs)
}
