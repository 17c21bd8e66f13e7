package sender

import (
	"bytes"
	"context"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/pipeline/records"
	"github.com/hookline/hookline/pipeline/stage"
	"github.com/hookline/hookline/schemas"
)

// due is when the reader may hand a job out: a job of a delay topic (a
// retry tier, hookline.overflow) when its record is due, read from the
// header it is written with (its write time plus the topic's exact delay,
// so due times grow along each partition and holding a partition's head
// holds nothing due earlier), and a job put off for room, on
// hookline.overflow, once its endpoint has room too (parked); a job of
// hookline.deliveries at once (not decoded), unless its partition is
// read far enough ahead (heldAhead).
func (s *Stage) due(m kafka.Message) time.Time {
	if m.Topic == schemas.TopicDeliveries {
		return s.heldAhead(m, s.cfg.Now())
	}
	due := records.DueAt(m)
	if m.Topic != schemas.TopicOverflow || !records.ForRoom(m) {
		return due
	}
	room := s.room.Load()
	if room == nil || *room == nil {
		return due
	}
	return parked(due, s.cfg.Now(), parkLimitOf(s.cfg.MaxQueueWait), func() bool {
		left, short := (*room)[string(m.Key)]
		return short && left.part == int32(m.Partition) && left.n.Add(-1) < 0
	})
}

// roomLeft is an endpoint's room as due reads and spends it.
type roomLeft struct {
	n    atomic.Int64
	part int32
}

// parked is when a job on hookline.overflow, due at due, may come back: a
// job put off for room comes back when its endpoint (the record's key)
// has room for it, and each job let through spends one of that room;
// without room it is looked at again after roomRecheck, and it comes back
// anyway parkLimit after it was due (to look for room, and be put off
// again if there is none). So a backlog waits there about once, not a
// lap every overflow delay. An endpoint that shares its partition with
// another's jobs away has room as far as parking goes (core.room): its
// head never holds theirs. The reader asks again when the time it was
// given comes (broker.Reader). noRoom says whether the endpoint has no
// room for it, and takes the room it has; a job asked twice takes twice,
// which only parks the next ones until the room is counted again.
func parked(due, now time.Time, parkLimit time.Duration, noRoom func() bool) time.Time {
	if due.After(now) || now.Sub(due) >= parkLimit || !noRoom() {
		return due
	}
	return now.Truncate(roomRecheck).Add(roomRecheck) // on a grid: one look for all parked heads
}

const (
	// roomRecheck is how often a parked job's endpoint is looked at for
	// room; roomEvery how often the sender counts the room of those short
	// of it.
	roomRecheck = 20 * time.Millisecond
	roomEvery   = 10 * time.Millisecond
)

// itemOverhead is what the sender holds for a job beyond its record's
// bytes (its decoded fields, its input, its place in the queue).
const itemOverhead = 512

// preferFresh is how long a job read from a delay topic may wait behind
// new jobs read with it (broker.Reader.Prefer).
const preferFresh = 50 * time.Millisecond

// Handle gives each job of a batch to the core; a job that does not decode
// is dead-lettered.
func (s *Stage) Handle(ctx context.Context, batch []*stage.Input, out *stage.Outbox) error {
	type arrival struct {
		job  schemas.Job
		size int64
		w    *work
	}
	arrivals := make([]arrival, len(batch))
	n := 0
	for _, in := range batch {
		a := &arrivals[n] // decoded in place: a job of its own would move to the heap
		if err := records.DecodeJob(in.Value, &a.job); err != nil || a.job.DeliveryID == "" || a.job.WebhookID == "" {
			*a = arrival{}
			out.Emit([]kafka.Message{broker.DeadLetter(in.Message, "delivery job is not valid")}, in)
			continue
		}
		s.webhookByID(ctx, a.job.WebhookID) // a webhook made elsewhere is known before the core looks
		// The job keeps its own copy of the payload, and the input lets go
		// of the record: a record's bytes are a slice of its whole fetched
		// batch, which a few jobs queued or parked would otherwise keep
		// alive (burst-50ms: a third of serve's peak heap).
		a.size = int64(len(in.Key) + len(in.Value) + itemOverhead)
		a.job.Payload = bytes.Clone(a.job.Payload)
		in.Key, in.Value, in.Headers = nil, nil, nil
		a.w = &work{in: in, ctx: ctx, out: out}
		n++
	}
	arrivals = arrivals[:n]
	// A few jobs at a time under the core's lock, their requests started
	// before the next few: a batch of 500 took up to 8 ms under it, which
	// a healthy endpoint's finishing request waited for (slow-dead's p99).
	for len(arrivals) > 0 {
		n := min(len(arrivals), arriveChunk)
		var stale []*stage.Input
		s.mu.Lock()
		now := s.cfg.Now()
		for _, a := range arrivals[:n] {
			in := a.w.in
			if in.Stale() { // its partition was taken away meanwhile (Revoke)
				stale = append(stale, in)
				continue
			}
			s.core.arrive(now, a.job, a.w, srcPart{topic: in.Topic, partition: in.Partition}, in.Offset, in.Time, a.size)
		}
		s.metrics.memory.Set(float64(s.core.bytes))
		effs := s.taken()
		s.mu.Unlock()
		for _, in := range stale {
			in.Abandon()
		}
		s.apply(effs)
		arrivals = arrivals[n:]
	}
	return nil
}

// arriveChunk is how many jobs of a batch Handle gives the core under one
// hold of its lock.
const arriveChunk = 64

// Release is called at the soft stop: nothing more is sent, and what is
// queued goes back uncommitted for the next run.
func (s *Stage) Release() {
	s.mu.Lock()
	s.core.stop(s.cfg.Now())
	effs := s.taken()
	s.mu.Unlock()
	s.apply(effs)
}

// Revoke fences partitions a rebalance takes away, before they are given
// up: their queued jobs are given back (their next owner reads them from
// the committed offset), and their requests in flight finish, or are cut
// short after RevokeTimeout and given back too. So an endpoint's jobs are
// never sent by two senders at once, nor its rate limit and concurrency
// doubled.
func (s *Stage) Revoke(ctx context.Context, revoked map[string][]int32) {
	parts := map[srcPart]bool{}
	for topic, ps := range revoked {
		for _, p := range ps {
			parts[srcPart{topic: topic, partition: int(p)}] = true
		}
	}
	s.mu.Lock()
	flying := s.core.revoke(s.cfg.Now(), parts)
	effs := s.taken()
	s.mu.Unlock()
	s.apply(effs)
	if len(flying) == 0 {
		return
	}
	left := func() int {
		s.mu.Lock()
		defer s.mu.Unlock()
		return s.core.revoked
	}
	deadline := time.NewTimer(s.cfg.RevokeTimeout)
	defer deadline.Stop()
	for cut := false; left() > 0; {
		select {
		case <-s.revokedDone:
		case <-deadline.C:
			if cut {
				s.log.Warn("requests of revoked partitions still in flight after they were cut short", "requests", left())
				return
			}
			for _, it := range flying {
				it.ref.(*work).cutShort()
			}
			cut = true
			deadline.Reset(2 * time.Second)
		case <-ctx.Done():
			return
		}
	}
}

// resyncEvery bounds how often one unknown webhook id makes the registry
// catch up: the jobs of a deleted webhook are failed without a wait.
const resyncEvery = 10 * time.Second

// webhookByID is the job's webhook. One this process has not seen may be
// new: the API and the matcher that made the job run elsewhere and saw it
// first. Before such a job is failed as deleted, the registry catches up
// with hookline.subscriptions (at most once every resyncEvery per id, for
// at most 5 s) and is asked again.
func (s *Stage) webhookByID(ctx context.Context, id string) (schemas.Webhook, bool) {
	if wh, ok := s.webhooks.ByID(id); ok {
		return wh, true
	}
	now := s.cfg.Now()
	s.syncMu.Lock()
	last, seen := s.synced[id]
	due := !seen || now.Sub(last) >= resyncEvery
	if due {
		if len(s.synced) > 10000 { // ids of deleted webhooks; forget them now and then
			clear(s.synced)
		}
		s.synced[id] = now
	}
	s.syncMu.Unlock()
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
