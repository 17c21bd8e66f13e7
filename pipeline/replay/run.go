package replay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/hookline/hookline/pipeline/matcher"
	"github.com/hookline/hookline/pipeline/records"
	"github.com/hookline/hookline/pipeline/stage"
	"github.com/hookline/hookline/schemas"
)

// errStopped: the replay was finished by someone else; the runner stops.
var errStopped = errors.New("replay: no longer running")

// runner is one replay running in this process: a stage.Handler on the
// stage runner, reading its stretch of hookline.events. Its commits are
// checkpoints: the replay's state on hookline.replays with, per
// partition, the offset after the last event done, and the counters of
// exactly the events before it, so that a resume counts nothing twice.
type runner struct {
	m      *Manager
	id     string
	tenant string // only its events count as scanned
	dry    bool
	match  *matcher.Matcher
	// ctx is the replay's own: cancelled by a cancel or a shutdown, it
	// stops the reading before the next event.
	ctx context.Context
	// from and to, when the replay was asked by time, bound the events'
	// timestamps too: a partition's timestamps need not grow with its
	// offsets, so its stretch can hold events from outside the times.
	from, to *time.Time

	mu    sync.Mutex
	parts []schemas.ReplayPartition // Next: the offset after the last event committed
	base  counts                    // the counters at the start of this run
	done  map[int][]doneAt          // per partition, events done and not yet committed
	upTo  map[int]counts            // per partition, the counts of the events committed in this run
}

// counts are a replay's counters.
type counts struct{ scanned, matched, enqueued int64 }

func (c counts) plus(d counts) counts {
	return counts{c.scanned + d.scanned, c.matched + d.matched, c.enqueued + d.enqueued}
}

// doneAt is the counts of one event done.
type doneAt struct {
	offset int64
	counts
}

// run runs a replay from its checkpoint until it is done (nil), stopped by
// ctx (nil: its progress is saved), or an error.
func (m *Manager) run(ctx context.Context, id string) error {
	r, ok := m.t.Get(id)
	if !ok || r.Finished() {
		return nil
	}
	ru := &runner{
		m: m, id: id, tenant: r.Tenant, dry: r.DryRun, ctx: ctx,
		match: matcher.New(newView(m.hooks, r.Tenant, r.WebhookIDs)),
		parts: slices.Clone(r.Partitions), base: counts{r.Scanned, r.Matched, r.Enqueued},
		from: r.From.Time, done: map[int][]doneAt{}, upTo: map[int]counts{},
	}
	if r.To != nil {
		ru.to = r.To.Time
	}
	ru.match.OnConditionError = func(webhookID string, err error) {
		m.log.Debug("replay: condition failed on an event", "replay_id", id, "webhook_id", webhookID, "err", err)
	}
	m.log.Info("replay running", "replay_id", id, "scanned", r.Scanned)
	if m.beforeRun != nil {
		m.beforeRun(ctx, id)
	}
	if err := ru.prepare(ctx); err != nil {
		return err
	}
	src, err := newStretch(m.b, ru.parts, m.cfg.ReadTimeout, ru)
	if err != nil {
		return err
	}
	if !ru.complete() {
		sr, err := stage.New(stage.Config{
			Name: "replay", MaxBatch: 500, CommitInterval: m.cfg.CheckpointInterval, CommitEvery: m.cfg.CheckpointEvery,
			DrainTimeout: m.cfg.DrainTimeout,
		}, ru, m.jobs, m.log.With("replay_id", id), stage.Source{Reader: src, Topic: schemas.TopicEvents})
		if err != nil {
			src.Close()
			return err
		}
		err = sr.Run(ctx)
		switch {
		case errors.Is(err, errStopped):
			return nil
		case err != nil:
			return err
		case !ru.complete():
			return nil // stopped: the runner's last commit saved the progress
		}
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.cfg.WriteTimeout)
	defer cancel()
	total, err := ru.finish(wctx)
	if errors.Is(err, errStopped) {
		return nil
	}
	if err != nil {
		return err
	}
	m.log.Info("replay done", "replay_id", id, "scanned", total.scanned, "matched", total.matched, "enqueued", total.enqueued)
	return nil
}

// prepare checks that the partitions still exist and moves checkpoints
// that retention has passed to the first event still held.
func (ru *runner) prepare(ctx context.Context) error {
	b := ru.m.b
	n, err := b.Partitions(ctx, schemas.TopicEvents)
	if err != nil {
		return err
	}
	behind := false
	for _, p := range ru.parts {
		if p.Partition >= n {
			return fmt.Errorf("partition %d of %s no longer exists", p.Partition, schemas.TopicEvents)
		}
		behind = behind || p.Next < p.End
	}
	if !behind {
		return nil
	}
	first, err := b.OffsetsAt(ctx, schemas.TopicEvents, time.Unix(0, 0))
	if err != nil {
		return err
	}
	for i := range ru.parts {
		p := &ru.parts[i]
		p.Next = min(max(p.Next, first[p.Partition]), max(p.End, p.Next))
	}
	return nil
}

func (ru *runner) inTime(at time.Time) bool {
	return (ru.from == nil || !at.Before(*ru.from)) && (ru.to == nil || at.Before(*ru.to))
}

// replayJob is a match's job delivered alone (batching does not apply to
// replays), under the delivery id of (event, webhook, replay): a replay
// resumed after a crash produces the same ids again.
func replayJob(mt matcher.Match, eventID string, at time.Time, replayID string) kafka.Message {
	job := mt.Job
	job.DeliveryID = matcher.DeliveryID(at, eventID, job.WebhookID, replayID)
	job.ReplayID = replayID
	env := mt.Envelope
	env.ID = job.DeliveryID
	job.Payload, _ = records.Marshal(env) // an Envelope always encodes
	return records.Job(schemas.TopicDeliveries, job)
}

// Handle matches each event of a batch against the replay's webhooks and
// emits its jobs; an event is done, and counted, once they are written.
// An event that does not decode is counted and skipped: the matcher
// dead-lettered it when it first read it. A cancel stops the batch before
// the next event.
func (ru *runner) Handle(_ context.Context, batch []*stage.Input, out *stage.Outbox) error {
	for i, in := range batch {
		if ru.m.beforeEvent != nil && ru.ctx.Err() == nil {
			ru.m.beforeEvent(ru.ctx, ru.id)
		}
		if ru.ctx.Err() != nil {
			for _, rest := range batch[i:] {
				rest.Abandon()
			}
			return nil
		}
		var c counts
		var jobs []kafka.Message
		if ru.inTime(in.Time) {
			c, jobs = ru.handle(in.Message)
		}
		partition, offset := in.Partition, in.Offset
		out.EmitThen(jobs, func(written bool) {
			if !written {
				in.Abandon()
				return
			}
			ru.record(partition, offset, c)
			in.Done()
		})
	}
	return nil
}

// handle matches one event of the replay's tenant: its counts and jobs.
func (ru *runner) handle(msg kafka.Message) (counts, []kafka.Message) {
	ev, err := schemas.DecodeEventAt(msg.Value, msg.Time, msg.Topic, msg.Partition, msg.Offset)
	if err != nil || ev.Tenant != ru.tenant {
		// Another tenant's events (and what is no event) are not the
		// replay's to count: its counters tell nothing of other tenants.
		return counts{}, nil
	}
	c := counts{scanned: 1}
	var jobs []kafka.Message
	for _, mt := range ru.match.Matches(matcher.Input{Event: ev, Time: msg.Time}) {
		c.matched++
		if mt.Err != nil {
			ru.m.log.Warn("replay: payload not shaped, no job", "replay_id", ru.id, "event_id", ev.ID, "err", mt.Err)
			continue
		}
		if ru.dry {
			continue
		}
		jobs = append(jobs, replayJob(mt, ev.ID, msg.Time, ru.id))
	}
	c.enqueued = int64(len(jobs))
	return c, jobs
}

// record notes an event done. Events finish in any order (one without
// jobs at once, one with jobs when they are written); a checkpoint counts
// those at or before the offset it commits, which are all done.
func (ru *runner) record(partition int, offset int64, c counts) {
	ru.mu.Lock()
	defer ru.mu.Unlock()
	ru.done[partition] = append(ru.done[partition], doneAt{offset: offset, counts: c})
}

// checkpoint is the runner's commit: it publishes, for the partitions of
// msgs, the offset after each one and the counters of every event up to
// it. A checkpoint never passes an event whose jobs are not on the topic.
func (ru *runner) checkpoint(ctx context.Context, msgs []kafka.Message) error {
	ru.mu.Lock()
	for _, m := range msgs {
		// Every event at or before the committed offset is done (the
		// offset may be a transaction marker's, done without counts).
		kept := ru.done[m.Partition][:0]
		for _, d := range ru.done[m.Partition] {
			if d.offset <= m.Offset {
				ru.upTo[m.Partition] = ru.upTo[m.Partition].plus(d.counts)
			} else {
				kept = append(kept, d)
			}
		}
		ru.done[m.Partition] = kept
		for j := range ru.parts {
			if ru.parts[j].Partition == m.Partition {
				ru.parts[j].Next = max(ru.parts[j].Next, m.Offset+1)
			}
		}
	}
	total := ru.base
	for _, c := range ru.upTo {
		total = total.plus(c)
	}
	parts := slices.Clone(ru.parts)
	ru.mu.Unlock()
	return ru.publish(ctx, total, parts, false)
}

// complete reports whether every partition is committed to its end.
func (ru *runner) complete() bool {
	ru.mu.Lock()
	defer ru.mu.Unlock()
	for _, p := range ru.parts {
		if p.Next < p.End {
			return false
		}
	}
	return true
}

// finish publishes the replay done: every partition read to its end.
func (ru *runner) finish(ctx context.Context) (counts, error) {
	ru.mu.Lock()
	total := ru.base
	for _, p := range ru.parts {
		total = total.plus(ru.upTo[p.Partition])
		for _, d := range ru.done[p.Partition] {
			total = total.plus(d.counts)
		}
	}
	parts := slices.Clone(ru.parts)
	ru.mu.Unlock()
	for i := range parts {
		parts[i].Next = max(parts[i].Next, parts[i].End)
	}
	return total, ru.publish(ctx, total, parts, true)
}

// publish writes the progress; done ends the replay unless it was
// cancelled meanwhile.
func (ru *runner) publish(ctx context.Context, total counts, parts []schemas.ReplayPartition, done bool) error {
	_, err := ru.m.update(ctx, ru.id, func(r *schemas.Replay) error {
		if r.State == schemas.ReplayDone || r.State == schemas.ReplayFailed {
			return errStopped
		}
		r.Scanned, r.Matched, r.Enqueued = total.scanned, total.matched, total.enqueued
		r.Partitions = parts
		if done && r.State == schemas.ReplayRunning {
			r.State = schemas.ReplayDone
		}
		return nil
	})
	return err
}

// runOnce runs a replay until it finishes, is cancelled, or stops on an
// error; after Attempts errors in a row the replay fails with the last one.
func (m *Manager) runOnce(ctx context.Context, id string) {
	err := m.run(ctx, id)
	if err == nil || ctx.Err() != nil {
		m.mu.Lock()
		delete(m.failures, id)
		delete(m.retryAt, id)
		m.mu.Unlock()
		return
	}
	m.mu.Lock()
	m.failures[id]++
	n := m.failures[id]
	m.retryAt[id] = time.Now().Add(m.cfg.RetryDelay << min(n-1, 8))
	m.mu.Unlock()
	if n < m.cfg.Attempts {
		m.log.Warn("replay stopped on an error, will resume", "replay_id", id, "attempt", n, "err", err)
		return
	}
	m.log.Error("replay failed", "replay_id", id, "attempts", n, "err", err)
	_, ferr := m.update(ctx, id, func(r *schemas.Replay) error {
		if r.Finished() {
			return schemas.ErrReplayFinished
		}
		r.State, r.Error = schemas.ReplayFailed, err.Error()
		return nil
	})
	if ferr != nil && !errors.Is(ferr, schemas.ErrReplayFinished) {
		m.log.Error("recording a failed replay", "replay_id", id, "err", ferr)
	}
}
