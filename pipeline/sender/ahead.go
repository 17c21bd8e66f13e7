package sender

import (
	"context"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/schemas"
)

// The sender reads hookline.deliveries ahead of what it sends, because a
// job of another webhook written behind a burst in the same partition is
// only reached by reading past the burst. That is the only reason: a
// partition whose every webhook (every one whose id hashes to it, as the
// writer partitions jobs, known or not to the core) already has aheadWait
// of work waiting in memory serves no one sooner by being read further, as
// a job behind would wait behind its own endpoint's queue anyway. Such a
// partition's head is held (due, the reader pauses the partition) until
// one of its webhooks runs short: a 50,000-event burst to one webhook held
// its whole burst in memory (about 95 MB of serve's 185 MB live) without
// this (docs/BENCHMARKS.md, "Throughput, issue 23").
//
// A webhook made while its partition is held is seen within countEvery
// (the registry's count changes), and the partition read on: its first job
// waits about that much longer than it would have.
const (
	// aheadWait is the work, in time at its endpoint's pace, that every
	// webhook of a partition holds before reading further on it stops.
	aheadWait = 250 * time.Millisecond
	// aheadJobs is the least work counted as enough, in jobs: an endpoint
	// whose pace is not known yet, or slow, is not left short by a
	// fetch's latency.
	aheadJobs = 64
	// partsEvery is how often the webhooks of each partition are listed
	// again from the registry; countEvery how often the registry's count
	// of webhooks is compared with the list's, to list again at once.
	partsEvery = time.Second
	countEvery = 20 * time.Millisecond
)

// partitionHooks is the webhooks of each partition of hookline.deliveries.
type partitionHooks struct {
	ids   map[int32][]string
	known map[string]bool
	n     int // webhooks listed that ByID finds: what Len counts
}

// listParts lists the webhooks of each of n partitions, as the writer
// partitions their jobs (broker.HashPartition of the webhook id).
func listParts(webhooks Webhooks, n int) *partitionHooks {
	p := &partitionHooks{ids: map[int32][]string{}, known: map[string]bool{}}
	webhooks.EachID(func(id string) {
		part := int32(broker.HashPartition([]byte(id), n))
		p.ids[part] = append(p.ids[part], id)
		p.known[id] = true
	})
	for id := range p.known { // after EachID, which holds the registry's lock
		if _, ok := webhooks.ByID(id); ok {
			p.n++
		}
	}
	return p
}

// listPartsEvery keeps s.parts current until ctx ends: every partsEvery,
// and at once when the registry's count of webhooks differs from the
// list's or the core holds jobs of a webhook the list does not know (made
// since). Outside the core's lock, as a registry of many webhooks takes
// milliseconds to list. A partition count it cannot read leaves no list
// (nothing is held).
func (s *Stage) listPartsEvery(ctx context.Context) {
	t := time.NewTicker(countEvery)
	defer t.Stop()
	for {
		if n, err := s.b.Partitions(ctx, schemas.TopicDeliveries); err == nil && n > 0 {
			s.parts.Store(listParts(s.webhooks, n))
		} else {
			s.parts.Store(nil)
		}
		listed := s.cfg.Now()
		for stale := false; !stale; {
			select {
			case <-t.C:
				p := s.parts.Load()
				stale = p == nil || p.n != s.webhooks.Len() || s.cfg.Now().Sub(listed) >= partsEvery
			case <-s.relist:
				stale = true
			case <-ctx.Done():
				return
			}
		}
	}
}

// aheadMap is the partitions held back, as the core last looked, at at.
// The core looks again at most every roomEvery, when it is called: a look
// older than aheadStale holds nothing, so that a partition is never held
// on a look the core, idle since, has not made again.
type aheadMap struct {
	at    time.Time
	parts map[int32]bool
}

const aheadStale = 3 * roomEvery

// readAhead is the partitions whose every webhook has enough work waiting
// in the core. Called with s.mu held.
func (s *Stage) readAhead(now time.Time) map[int32]bool {
	parts := s.parts.Load()
	if parts == nil {
		return nil
	}
	for id := range s.core.endpoints {
		if !parts.known[id] { // a webhook made since the list: list again
			select {
			case s.relist <- struct{}{}:
			default:
			}
			return nil
		}
	}
	var ahead map[int32]bool
	for part, ids := range parts.ids {
		if s.core.enough(ids, now) {
			if ahead == nil {
				ahead = map[int32]bool{}
			}
			ahead[part] = true
		}
	}
	return ahead
}

// enough reports whether every one of the webhooks has aheadWait of work
// queued at the pace its endpoint sends (completions measured, not what
// its concurrency could reach: capacity's reading), and aheadJobs at
// least. One without an endpoint holding jobs has not (its jobs may be
// anywhere behind).
func (c *core) enough(ids []string, now time.Time) bool {
	for _, id := range ids {
		e := c.endpoints[id]
		if e == nil || e.bytes == 0 {
			return false
		}
		sent := max(e.meter.rate(), e.meter.lastSecond(now))
		if e.queued < max(aheadJobs, int(sent*aheadWait.Seconds())) {
			return false
		}
	}
	return len(ids) > 0
}

// heldAhead is when a job of hookline.deliveries may be handed out: now,
// unless the core's last look found every webhook of its partition with
// enough work waiting; then at the next look (on roomRecheck's grid).
func (s *Stage) heldAhead(m kafka.Message, now time.Time) time.Time {
	if a := s.ahead.Load(); a != nil && now.Sub(a.at) <= aheadStale && a.parts[int32(m.Partition)] {
		return now.Truncate(roomRecheck).Add(roomRecheck)
	}
	return time.Time{}
}
