package sender

import (
	"context"
	"encoding/json"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/pipeline/records"
	"github.com/hookline/hookline/pipeline/stage"
)

// due is the gate of a retry tier: a job waits until its due_at. Every job
// of a tier waits at most the tier's delay, so the head of a tier is
// always the next one due, and holding it holds nothing due earlier.
func (s *Stage) due(ctx context.Context, m kafka.Message) bool {
	return sleepUntil(ctx, records.DueAt(m), s.now)
}

// Handle queues each job of a batch for its endpoint; a job that does not
// decode is dead-lettered.
func (s *Stage) Handle(ctx context.Context, batch []*stage.Input, out *stage.Outbox) error {
	for _, in := range batch {
		w := work{in: in, ctx: ctx, out: out}
		if err := json.Unmarshal(in.Value, &w.job); err != nil || w.job.DeliveryID == "" || w.job.WebhookID == "" {
			out.Emit([]kafka.Message{broker.DeadLetter(in.Message, "delivery job is not valid")}, in)
			continue
		}
		s.dispatch(w)
	}
	return nil
}

// Release is called at the soft stop: the lanes send no more.
func (s *Stage) Release() { s.stopping.Store(true) }

func sleepUntil(ctx context.Context, t time.Time, now func() time.Time) bool {
	d := t.Sub(now())
	if d <= 0 {
		return true
	}
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-timer.C:
		return true
	case <-ctx.Done():
		return false
	}
}
