package api

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/pipeline/records"
	"github.com/hookline/hookline/schemas"
)

// Producer is the API's writer to Kafka: Events and Jobs on the broker.
// Events go to hookline.events keyed by resource id, so that one
// resource's events stay in order; a publish with an event over the size
// limit writes nothing (EventTooLargeError); redeliveries go to hookline.deliveries keyed by webhook
// id like the matcher's jobs, cut into batches under the size limit; the
// deliveries of a webhook disabled or deleted while they waited are failed
// on hookline.attempts and hookline.dead, as the sender fails them.
type Producer struct {
	events, jobs *broker.Writer
	unsent       *broker.Writer // attempt records of deliveries failed unsent
	timeout      time.Duration  // publishTimeout; tests shorten it
	limit        int            // the broker's message size limit
}

// publishTimeout bounds one publish: a broker that is down answers the
// client a 503 within it, instead of holding the request while the writer
// retries.
const publishTimeout = 10 * time.Second

// NewProducer returns the API's writer to b.
func NewProducer(b *broker.Broker) *Producer {
	return &Producer{events: b.Writer(schemas.TopicEvents, nil), jobs: b.Writer(schemas.TopicDeliveries, records.Oversize),
		unsent: b.Writer("", records.Oversize), timeout: publishTimeout, limit: b.MaxMessageBytes()}
}

// PublishEvents writes events, acknowledged by all replicas.
func (p *Producer) PublishEvents(ctx context.Context, evs []schemas.Event) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	msgs := make([]kafka.Message, len(evs))
	for i, ev := range evs {
		value, err := records.Marshal(ev)
		if err != nil {
			return fmt.Errorf("encode event %s: %w", ev.ID, err)
		}
		msgs[i] = kafka.Message{Key: []byte(ev.ResourceID), Value: value}
		// Checked before anything is written: a request is published
		// whole or not at all.
		if !p.events.Fits(msgs[i]) {
			return &EventTooLargeError{Index: i, Size: broker.Size(msgs[i]), Limit: p.limit}
		}
	}
	return p.events.Write(ctx, msgs)
}

// PublishJobs writes delivery jobs, acknowledged by all replicas.
func (p *Producer) PublishJobs(ctx context.Context, jobs []schemas.Job) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	msgs := make([]kafka.Message, len(jobs))
	for i, job := range jobs {
		msgs[i] = records.Job(schemas.TopicDeliveries, job)
	}
	return p.jobs.Write(ctx, msgs)
}

// PublishFailures writes, for each delivery failed without a request, its
// attempt record (hookline.attempts, keyed by delivery id), the record the
// sender writes for it, acknowledged by all replicas. A record over the
// size limit is replaced as the sender's would be (records.Oversize: the
// attempt without its body). No dead letter: the sender writes the job's
// when it meets the job (at once for one it holds, when it comes back for
// one on a delay topic), and a second one for the same delivery only
// doubled what people read on hookline.dead.
func (p *Producer) PublishFailures(ctx context.Context, failed []Failure) error {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()
	msgs := make([]kafka.Message, 0, len(failed))
	for _, f := range failed {
		msgs = append(msgs, records.Attempt(f.Attempt))
	}
	return p.unsent.Write(ctx, msgs)
}

// Close flushes and closes the writers.
func (p *Producer) Close() error {
	return errors.Join(p.events.Close(), p.jobs.Close(), p.unsent.Close())
}
