package sender

import (
	"context"
	"hash/fnv"
	"sync"
	"time"

	"golang.org/x/time/rate"

	"github.com/hookline/hookline/pipeline/stage"
	"github.com/hookline/hookline/schemas"
)

// work is one job in flight: its input, and the context (ended at the
// hard stop) and outbox of the run that fetched it.
type work struct {
	job    schemas.Job
	in     *stage.Input
	ctx    context.Context
	out    *stage.Outbox
	queued time.Time // when it entered its endpoint's queue
}

// behindAfter is how long the oldest queued job of an endpoint may wait
// before the endpoint counts as behind (see StageConfig.EndpointQueue).
const behindAfter = time.Second

// endpoint is the bounded queue of one webhook's jobs, split into lanes:
// a resource's jobs always take the same lane, so they go out in order;
// lanes run concurrently, up to EndpointConcurrency requests at once. A
// lane's goroutine exists only while the lane has work.
type endpoint struct {
	id string

	mu      sync.Mutex
	lanes   [][]work
	running []bool
	queued  int
	limiter *rate.Limiter
	limit   float64
	// gone is set when the endpoint is forgotten: a job must then go to
	// the endpoint's new queue, or one resource could take two lanes.
	gone bool
}

// endpoint returns the queue of a webhook, creating it on first use.
func (s *Stage) endpoint(id string) *endpoint {
	s.mu.Lock()
	defer s.mu.Unlock()
	e, ok := s.endpoints[id]
	if !ok {
		n := s.cfg.EndpointConcurrency
		e = &endpoint{id: id, lanes: make([][]work, n), running: make([]bool, n)}
		s.endpoints[id] = e
	}
	return e
}

// dispatch queues a job for its endpoint, or puts it off when the
// endpoint's queue is full, so that one slow endpoint never holds the
// fetch loop.
func (s *Stage) dispatch(w work) {
	wh, ok := s.webhooks.ByID(w.job.WebhookID)
	if !ok || !wh.Enabled {
		s.metrics.dropped.Inc()
		s.finish(w, nil)
		return
	}
	e := s.endpoint(wh.ID)
	lane := laneOf(w.job.ResourceID, len(e.lanes))
	e.mu.Lock()
	for e.gone {
		e.mu.Unlock()
		e = s.endpoint(wh.ID)
		e.mu.Lock()
	}
	if s.endpointFull(e) {
		e.mu.Unlock()
		s.putOff(w, wh, schemas.RetryEndpointBusy)
		return
	}
	w.queued = time.Now()
	e.lanes[lane] = append(e.lanes[lane], w)
	e.queued++
	s.metrics.setQueued(e.id, e.queued)
	start := !e.running[lane]
	e.running[lane] = true
	e.mu.Unlock()
	if start {
		s.lanes.Add(1)
		go func() { defer s.lanes.Done(); s.runLane(e, lane) }()
	}
}

// endpointFull reports whether an endpoint's queue takes no more jobs: it
// holds EndpointQueue jobs and is behind, or 16 times as many. Called with
// e.mu held.
func (s *Stage) endpointFull(e *endpoint) bool {
	switch {
	case e.queued < s.cfg.EndpointQueue:
		return false
	case e.queued >= 16*s.cfg.EndpointQueue:
		return true
	}
	oldest := time.Now()
	for _, lane := range e.lanes {
		if len(lane) > 0 && lane[0].queued.Before(oldest) {
			oldest = lane[0].queued
		}
	}
	return time.Since(oldest) > behindAfter
}

func laneOf(resourceID string, lanes int) int {
	if lanes == 1 {
		return 0
	}
	h := fnv.New32a()
	h.Write([]byte(resourceID))
	return int(h.Sum32() % uint32(lanes))
}

// runLane sends a lane's jobs one after another until the lane is empty.
// Once shutdown begins it sends no more: the jobs still queued are left
// uncommitted for the next run, so that a slow endpoint does not hold the
// shutdown for the whole drain timeout.
func (s *Stage) runLane(e *endpoint, lane int) {
	for {
		e.mu.Lock()
		if s.stopping.Load() {
			for _, w := range e.lanes[lane] {
				e.queued--
				s.metrics.setQueued(e.id, e.queued)
				s.abandon(w)
			}
			e.lanes[lane] = nil
		}
		if len(e.lanes[lane]) == 0 {
			e.running[lane] = false
			e.lanes[lane] = nil
			idle := e.queued == 0 && !anyTrue(e.running)
			e.mu.Unlock()
			if idle {
				s.forget(e)
			}
			return
		}
		w := e.lanes[lane][0]
		e.lanes[lane] = e.lanes[lane][1:]
		e.queued--
		s.metrics.setQueued(e.id, e.queued)
		e.mu.Unlock()
		s.metrics.wait.Observe(time.Since(w.queued).Seconds())
		s.process(e, w)
	}
}

// forget drops an idle endpoint so that memory follows the endpoints with
// work, not every endpoint ever seen.
func (s *Stage) forget(e *endpoint) {
	s.mu.Lock()
	defer s.mu.Unlock()
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.queued == 0 && !anyTrue(e.running) && s.endpoints[e.id] == e {
		delete(s.endpoints, e.id)
		e.gone = true
	}
}

func anyTrue(bs []bool) bool {
	for _, b := range bs {
		if b {
			return true
		}
	}
	return false
}

// rateLimiter returns the endpoint's limiter for the webhook's current
// rate_limit, or nil for none.
func (e *endpoint) rateLimiter(wh schemas.Webhook) *rate.Limiter {
	e.mu.Lock()
	defer e.mu.Unlock()
	if wh.RateLimit <= 0 {
		e.limiter, e.limit = nil, 0
		return nil
	}
	if e.limiter == nil || e.limit != wh.RateLimit {
		e.limiter = rate.NewLimiter(rate.Limit(wh.RateLimit), max(1, int(wh.RateLimit)))
		e.limit = wh.RateLimit
	}
	return e.limiter
}
