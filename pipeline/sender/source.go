package sender

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/hookline/hookline/pipeline/broker"
)

// source is one topic the sender consumes: hookline.deliveries, or a retry
// tier whose jobs wait until they are due.
type source struct {
	*broker.Offsets
	reader  *broker.Reader
	topic   string
	waitDue bool
}

func newSource(r *broker.Reader, topic string, waitDue bool) *source {
	return &source{Offsets: broker.NewOffsets(r, topic), reader: r, topic: topic, waitDue: waitDue}
}

// fetch reads jobs from one source and dispatches them until ctx ends.
func (s *Stage) fetch(ctx context.Context, src *source) error {
	for {
		m, err := src.reader.FetchMessage(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("sender: fetch %s: %w", src.topic, err)
		}
		if broker.IsControl(m) { // a transaction marker: nothing to send
			if !src.WaitForRoom(ctx, m.Partition, s.cfg.MaxUncommitted) {
				return nil
			}
			src.Track(m)()
			continue
		}
		var w work
		if err := json.Unmarshal(m.Value, &w.job); err != nil || w.job.DeliveryID == "" || w.job.WebhookID == "" {
			w.job.WebhookID = ""
		}
		if src.waitDue && !w.job.DueAt.IsZero() {
			if !sleepUntil(ctx, w.job.DueAt, s.now) {
				return nil // shutting down: the job stays uncommitted
			}
		}
		if !src.WaitForRoom(ctx, m.Partition, s.cfg.MaxUncommitted) {
			return nil
		}
		select {
		case s.slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		s.inflight.Add(1)
		w.finished = src.Track(m)
		if w.job.WebhookID == "" {
			s.finish(w, []kafka.Message{broker.DeadLetter(m, "delivery job is not valid")})
			continue
		}
		s.dispatch(w)
	}
}

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
