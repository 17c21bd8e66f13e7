package sender

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/hookline/hookline/pipeline/broker"
)

// source is one topic the sender consumes: hookline.deliveries, or a retry
// tier whose jobs wait until they are due.
type source struct {
	reader  *kafka.Reader
	topic   string
	waitDue bool

	mu       sync.Mutex
	trackers map[int]*tracker
}

func newSource(r *kafka.Reader, topic string, waitDue bool) *source {
	return &source{reader: r, topic: topic, waitDue: waitDue, trackers: map[int]*tracker{}}
}

// track registers a fetched message and returns the function that marks it
// finished. A partition fetched again from an older offset (after a
// rebalance) starts a new tracker; marks for the old one are ignored.
func (src *source) track(m kafka.Message) func() {
	src.mu.Lock()
	t := src.trackers[m.Partition]
	if t == nil || !t.accepts(m.Offset) {
		t = newTracker()
		src.trackers[m.Partition] = t
	}
	src.mu.Unlock()
	t.add(m.Offset)
	return func() { t.done(m.Offset) }
}

// waitForRoom holds fetching while a partition has max jobs tracked
// behind its oldest unfinished one. It returns false if ctx ends first.
func (src *source) waitForRoom(ctx context.Context, partition, max int) bool {
	for {
		src.mu.Lock()
		t := src.trackers[partition]
		src.mu.Unlock()
		if t == nil || t.pending() < max {
			return true
		}
		select {
		case <-ctx.Done():
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
}

// commit commits every partition's finished prefix.
func (src *source) commit(ctx context.Context, log *slog.Logger) {
	src.mu.Lock()
	var msgs []kafka.Message
	var trackers []*tracker
	for p, t := range src.trackers {
		if off, ok := t.toCommit(); ok {
			msgs = append(msgs, kafka.Message{Topic: src.topic, Partition: p, Offset: off})
			trackers = append(trackers, t)
		}
	}
	src.mu.Unlock()
	if len(msgs) == 0 {
		return
	}
	if err := src.reader.CommitMessages(ctx, msgs...); err != nil {
		log.Warn("commit failed; the jobs will be read again", "topic", src.topic, "err", err)
		return
	}
	for i, t := range trackers {
		t.committedUpTo(msgs[i].Offset)
	}
}

func (src *source) commitEvery(ctx context.Context, every time.Duration, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			src.commit(ctx, log)
		}
	}
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
		var w work
		if err := json.Unmarshal(m.Value, &w.job); err != nil || w.job.DeliveryID == "" || w.job.WebhookID == "" {
			w.job.WebhookID = ""
		}
		if src.waitDue && !w.job.DueAt.IsZero() {
			if !sleepUntil(ctx, w.job.DueAt, s.now) {
				return nil // shutting down: the job stays uncommitted
			}
		}
		if !src.waitForRoom(ctx, m.Partition, s.cfg.MaxUncommitted) {
			return nil
		}
		select {
		case s.slots <- struct{}{}:
		case <-ctx.Done():
			return nil
		}
		s.inflight.Add(1)
		w.finished = src.track(m)
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
