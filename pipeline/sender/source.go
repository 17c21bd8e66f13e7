package sender

import (
	"context"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/pipeline/records"
	"github.com/hookline/hookline/pipeline/stage"
	"github.com/hookline/hookline/schemas"
)

// due is when the reader may hand a job out: a job of a retry tier at its
// due_at, read from the header it is written with, and a job of
// hookline.deliveries at once (not decoded). Every job of a tier waits at
// most the tier's delay, so the head of a tier's partition is always the
// next one due there, and holding it holds nothing due earlier.
func (s *Stage) due(m kafka.Message) time.Time {
	if m.Topic == schemas.TopicDeliveries {
		return time.Time{}
	}
	return records.DueAt(m)
}

// Handle queues each job of a batch for its endpoint; a job that does not
// decode is dead-lettered.
func (s *Stage) Handle(ctx context.Context, batch []*stage.Input, out *stage.Outbox) error {
	for _, in := range batch {
		w := work{in: in, ctx: ctx, out: out}
		if err := records.DecodeJob(in.Value, &w.job); err != nil || w.job.DeliveryID == "" || w.job.WebhookID == "" {
			out.Emit([]kafka.Message{broker.DeadLetter(in.Message, "delivery job is not valid")}, in)
			continue
		}
		s.dispatch(w)
	}
	return nil
}

// Release is called at the soft stop: the lanes send no more.
func (s *Stage) Release() {
	s.stopping.Store(true)
	s.wakeAll()
}
