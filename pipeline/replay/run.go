package replay

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/pipeline/matcher"
	"github.com/hookline/hookline/pipeline/records"
	"github.com/hookline/hookline/schemas"
)

// eventNamespace is the matcher's (pipeline/matcher/run.go): an event
// published without an id gets, in a replay, the id the matcher derived
// from its position when it first read it.
var eventNamespace = uuid.MustParse("6f1c8a8e-4a55-4c3e-9d0e-2f6a1c7b9e10")

// flushAt is how many jobs a runner holds before it produces them.
const flushAt = 500

// errStopped: the replay was finished by someone else; the runner stops.
var errStopped = errors.New("replay: no longer running")

// runner is one replay running in this process, owned by one goroutine:
// the progress since the last checkpoint lives here until it is written.
type runner struct {
	m     *Manager
	id    string
	dry   bool
	match *matcher.Matcher
	// from and to, when the replay was asked by time, bound the events'
	// timestamps too: a partition's timestamps need not grow with its
	// offsets, so its stretch can hold events from outside the times.
	from, to *time.Time

	parts                      []schemas.ReplayPartition // Next: the offset after the last event handled
	scanned, matched, enqueued int64
	pending                    []kafka.Message // jobs not yet produced
	sinceCheckpoint            int
	lastCheckpoint             time.Time
}

// run runs a replay from its checkpoint until it is done (nil), stopped by
// ctx (nil: its progress is written, within DrainTimeout), or an error.
func (m *Manager) run(ctx context.Context, id string) error {
	r, ok := m.t.Get(id)
	if !ok || r.Finished() {
		return nil
	}
	ru := &runner{
		m: m, id: id, dry: r.DryRun,
		match: matcher.New(newView(m.hooks, r.Tenant, r.WebhookIDs)),
		parts: slices.Clone(r.Partitions), scanned: r.Scanned, matched: r.Matched, enqueued: r.Enqueued,
		lastCheckpoint: time.Now(), from: r.From.Time,
	}
	if r.To != nil {
		ru.to = r.To.Time
	}
	ru.match.OnConditionError = func(webhookID string, err error) {
		m.log.Debug("replay: condition failed on an event", "replay_id", id, "webhook_id", webhookID, "err", err)
	}
	m.log.Info("replay running", "replay_id", id, "scanned", r.Scanned)
	err := ru.prepare(ctx)
	if err == nil {
		err = ru.readAll(ctx)
	}
	switch {
	case err == nil:
		if err := ru.write(ctx, func(ctx context.Context) error { return ru.checkpoint(ctx, true) }); err != nil {
			return err
		}
		m.log.Info("replay done", "replay_id", id, "scanned", ru.scanned, "matched", ru.matched, "enqueued", ru.enqueued)
		return nil
	case errors.Is(err, errStopped):
		return nil
	case ctx.Err() != nil:
		ru.drain(ctx)
		return nil
	default:
		ru.drain(ctx)
		return err
	}
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

func (ru *runner) readAll(ctx context.Context) error {
	for i := range ru.parts {
		if err := ru.readPartition(ctx, &ru.parts[i]); err != nil {
			return err
		}
	}
	return nil
}

// readPartition handles the events of one partition from Next to End,
// checkpointing on the way.
func (ru *runner) readPartition(ctx context.Context, p *schemas.ReplayPartition) error {
	if p.Next >= p.End {
		return nil
	}
	reader, err := ru.m.b.PartitionReader(schemas.TopicEvents, p.Partition, p.Next)
	if err != nil {
		return err
	}
	defer reader.Close()
	for p.Next < p.End {
		fetchCtx, cancel := context.WithTimeout(ctx, ru.m.cfg.ReadTimeout)
		msg, err := reader.FetchMessage(fetchCtx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			return fmt.Errorf("read %s/%d at offset %d (end %d): %w", schemas.TopicEvents, p.Partition, p.Next, p.End, err)
		case msg.Offset >= p.End:
			p.Next = p.End
			return nil
		}
		if ru.m.beforeEvent != nil {
			ru.m.beforeEvent(ctx, ru.id)
		}
		if ctx.Err() != nil { // cancelled: stop before this event
			return ctx.Err()
		}
		ru.sinceCheckpoint++
		if broker.IsControl(msg) {
			// A transaction marker: not an event. The records of an
			// aborted transaction never reach here (read_committed).
		} else if ru.inTime(msg.Time) {
			ru.handle(msg)
		}
		p.Next = msg.Offset + 1
		if len(ru.pending) >= flushAt {
			if err := ru.write(ctx, ru.flush); err != nil {
				return err
			}
		}
		if ru.sinceCheckpoint >= ru.m.cfg.CheckpointEvery || time.Since(ru.lastCheckpoint) >= ru.m.cfg.CheckpointInterval {
			if err := ru.write(ctx, func(ctx context.Context) error { return ru.checkpoint(ctx, false) }); err != nil {
				return err
			}
		}
	}
	return nil
}

func (ru *runner) inTime(at time.Time) bool {
	return (ru.from == nil || !at.Before(*ru.from)) && (ru.to == nil || at.Before(*ru.to))
}

// handle matches one event against the replay's webhooks and holds the
// jobs. An event that does not decode is counted and skipped: the matcher
// dead-lettered it when it first read it.
func (ru *runner) handle(msg kafka.Message) {
	ru.scanned++
	fallback := uuid.NewSHA1(eventNamespace, fmt.Appendf(nil, "%s/%d/%d", msg.Topic, msg.Partition, msg.Offset)).String()
	ev, err := schemas.DecodeEvent(msg.Value, msg.Time, fallback)
	if err != nil {
		return
	}
	for _, mt := range ru.match.Matches(matcher.Input{Event: ev, Time: msg.Time}) {
		ru.matched++
		if mt.Err != nil {
			ru.m.log.Warn("replay: payload not shaped, no job", "replay_id", ru.id, "event_id", ev.ID, "err", mt.Err)
			continue
		}
		if ru.dry {
			continue
		}
		ru.pending = append(ru.pending, replayJob(mt, ev.ID, msg.Time, ru.id))
	}
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

// write runs a write of jobs or progress under WriteTimeout, not under
// ctx: a cancel or a shutdown must not cut a write off halfway, when the
// broker may have taken it without the runner knowing.
func (ru *runner) write(ctx context.Context, f func(context.Context) error) error {
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), ru.m.cfg.WriteTimeout)
	defer cancel()
	return f(wctx)
}

// flush produces the jobs held, acknowledged by all replicas.
func (ru *runner) flush(ctx context.Context) error {
	if len(ru.pending) == 0 {
		return nil
	}
	if err := ru.m.jobs.Write(ctx, ru.pending); err != nil {
		return fmt.Errorf("produce %d jobs: %w", len(ru.pending), err)
	}
	ru.enqueued += int64(len(ru.pending))
	ru.pending = ru.pending[:0]
	return nil
}

// checkpoint produces the jobs held, then publishes the progress: a
// checkpoint never passes an event whose jobs are not on the topic. done
// ends the replay unless it was cancelled meanwhile.
func (ru *runner) checkpoint(ctx context.Context, done bool) error {
	if err := ru.flush(ctx); err != nil {
		return err
	}
	_, err := ru.m.update(ctx, ru.id, func(r *schemas.Replay) error {
		if r.State == schemas.ReplayDone || r.State == schemas.ReplayFailed {
			return errStopped
		}
		r.Scanned, r.Matched, r.Enqueued = ru.scanned, ru.matched, ru.enqueued
		r.Partitions = slices.Clone(ru.parts)
		if done && r.State == schemas.ReplayRunning {
			r.State = schemas.ReplayDone
		}
		return nil
	})
	if err != nil {
		return err
	}
	ru.sinceCheckpoint, ru.lastCheckpoint = 0, time.Now()
	return nil
}

// drain writes the progress of a runner that stops before the end, within
// DrainTimeout. A cancelled replay's held jobs are dropped, not produced;
// otherwise they are produced first, so that a resume starts after them.
// If this fails, a resume reads again from the last checkpoint.
func (ru *runner) drain(ctx context.Context) {
	m := ru.m
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), m.cfg.DrainTimeout)
	defer cancel()
	r, _ := m.t.Get(ru.id)
	if r.State == schemas.ReplayCancelled {
		ru.pending = nil
	}
	if err := ru.checkpoint(dctx, false); err != nil && !errors.Is(err, errStopped) {
		m.log.Warn("replay: progress not saved, a resume reads again from the last checkpoint", "replay_id", ru.id, "err", err)
	}
}
