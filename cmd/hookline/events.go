package main

import (
	"context"
	"fmt"

	"github.com/segmentio/kafka-go"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/pipeline/records"
	"github.com/hookline/hookline/schemas"
)

// eventPublisher writes API-published events to hookline.events, keyed by
// resource id so that one resource's events stay in order. The API refused
// events over the size limit before this is called.
type eventPublisher struct {
	w *broker.Writer
}

func newEventPublisher(b *broker.Broker) *eventPublisher {
	return &eventPublisher{w: b.Writer(schemas.TopicEvents, nil)}
}

func (p *eventPublisher) PublishEvents(ctx context.Context, evs []schemas.Event) error {
	msgs := make([]kafka.Message, len(evs))
	for i, ev := range evs {
		value, err := records.Marshal(ev)
		if err != nil {
			return fmt.Errorf("encode event %s: %w", ev.ID, err)
		}
		msgs[i] = kafka.Message{Key: []byte(ev.ResourceID), Value: value}
	}
	return p.w.Write(ctx, msgs)
}

func (p *eventPublisher) Close() error { return p.w.Close() }

// jobPublisher enqueues redeliveries on hookline.deliveries, keyed by
// webhook id like the matcher's jobs; the writer cuts a long list into
// batches under the size limit.
type jobPublisher struct {
	w *broker.Writer
}

func (p *jobPublisher) PublishJobs(ctx context.Context, jobs []schemas.Job) error {
	msgs := make([]kafka.Message, len(jobs))
	for i, job := range jobs {
		msgs[i] = records.Job(schemas.TopicDeliveries, job)
	}
	return p.w.Write(ctx, msgs)
}
