package sender

import (
	"context"
	"encoding/json"
	"log/slog"
	"sync"
	"time"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/pipeline/table"
	"github.com/hookline/hookline/schemas"
)

// healthFlush is how often changed endpoint states are written to
// hookline.endpoints. A crash loses at most this much of them; a breaker
// that opens or closes is written at once.
const healthFlush = time.Second

// health is the state of the endpoints this sender owns, as any process
// reads it from hookline.endpoints (compacted, keyed by webhook id): since
// when every attempt has failed (so that a webhook failing for
// DisableAfter is disabled, SPEC §4), the circuit breaker and the
// concurrency limit. The owning sender keeps it in memory and writes
// changes in the background, so that a lane never waits for a write; a
// sender that takes an endpoint over (a restart, a rebalance) goes on from
// the row there, and an API process anywhere shows it (EndpointStates).
type health struct {
	t   *table.Table[schemas.EndpointState]
	log *slog.Logger
	// limits returns the current concurrency limit of every endpoint the
	// sender holds.
	limits func() map[string]int
	kick   chan struct{} // a write is due now (a breaker changed)
	now    func() time.Time

	mu sync.Mutex
	m  map[string]*endpointHealth // by webhook id
}

type endpointHealth struct {
	failingSince time.Time
	breaker      string
	limit        int
	dirty        bool // changed since the last write
}

func newHealth(b *broker.Broker, limits func() map[string]int, now func() time.Time, log *slog.Logger) *health {
	return &health{t: table.New(b, schemas.TopicEndpoints, endpointCodec{}, nil, log), log: log, now: now,
		limits: limits, kick: make(chan struct{}, 1), m: map[string]*endpointHealth{}}
}

// run follows hookline.endpoints and writes changes every healthFlush (at
// once after a breaker changed) until ctx ends, then writes the last ones
// (for at most a few seconds).
func (h *health) run(ctx context.Context) error {
	follow, stop := context.WithCancel(context.WithoutCancel(ctx))
	defer stop()
	done := make(chan error, 1)
	go func() { done <- h.t.Run(follow) }()
	tick := time.NewTicker(healthFlush)
	defer tick.Stop()
	for {
		select {
		case err := <-done:
			return err
		case <-tick.C:
			h.flush(ctx)
		case <-h.kick:
			h.flush(ctx)
		case <-ctx.Done():
			last, cancel := context.WithTimeout(follow, 3*time.Second)
			h.flush(last)
			cancel()
			stop()
			return <-done
		}
	}
}

// entry is an endpoint's state, from the topic the first time it is seen.
// A sender that takes an endpoint over goes on from the row's failing
// clock and limit, with a breaker of its own, closed: it writes that at
// the next flush, so that the API never shows the last owner's open
// circuit for an endpoint that answers again. Called with h.mu held.
func (h *health) entry(webhookID string) *endpointHealth {
	st := h.m[webhookID]
	if st == nil {
		st = &endpointHealth{}
		if row, found := h.t.Get(webhookID); found {
			st.failingSince, st.limit = row.FailingSince, row.ConcurrencyLimit
			st.breaker, st.dirty = BreakerClosed, row.Breaker != BreakerClosed
		}
		h.m[webhookID] = st
	}
	return st
}

// note records an attempt's outcome and returns since when the endpoint
// has failed (zero: it has not).
func (h *health) note(webhookID string, ok bool, at time.Time) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.entry(webhookID)
	switch {
	case ok && !st.failingSince.IsZero():
		st.failingSince, st.dirty = time.Time{}, true
	case !ok && st.failingSince.IsZero():
		st.failingSince, st.dirty = at.UTC(), true
	}
	return st.failingSince
}

// failingSince is since when every attempt of the endpoint has failed;
// zero when it has not.
func (h *health) failingSince(webhookID string) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.entry(webhookID).failingSince
}

// breakerChanged records a breaker's new state and asks for a write now.
func (h *health) breakerChanged(webhookID, state string) {
	h.mu.Lock()
	st := h.entry(webhookID)
	if st.breaker != state {
		st.breaker, st.dirty = state, true
	}
	h.mu.Unlock()
	select {
	case h.kick <- struct{}{}:
	default:
	}
}

// setLimit records an endpoint's concurrency limit (flushes read those of
// the endpoints the sender holds; this is for one it stops holding).
func (h *health) setLimit(webhookID string, limit int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if st := h.entry(webhookID); st.limit != limit {
		st.limit, st.dirty = limit, true
	}
}

// flush writes every changed state in one write; when it fails they stay
// changed and are written at the next flush.
func (h *health) flush(ctx context.Context) {
	var limits map[string]int
	if h.limits != nil {
		limits = h.limits()
	}
	h.mu.Lock()
	for id, limit := range limits {
		if st := h.entry(id); st.limit != limit {
			st.limit, st.dirty = limit, true
		}
	}
	var rows []schemas.EndpointState
	now := h.now().UTC()
	for id, st := range h.m {
		if !st.dirty {
			continue
		}
		st.dirty = false
		row, _ := h.t.Get(id)
		rows = append(rows, schemas.EndpointState{WebhookID: id, FailingSince: st.failingSince, Breaker: st.breaker,
			ConcurrencyLimit: st.limit, UpdatedAt: now, Version: max(row.Version, now.UnixNano()) + 1})
	}
	h.mu.Unlock()
	if err := h.t.Put(ctx, rows); err != nil {
		if ctx.Err() == nil {
			h.log.Warn("could not write endpoint states; trying again", "endpoints", len(rows), "err", err)
		}
		h.mu.Lock()
		for _, r := range rows {
			h.m[r.WebhookID].dirty = true
		}
		h.mu.Unlock()
	}
}

// endpointCodec: a message of hookline.endpoints is an EndpointState keyed
// by webhook id. Versions are the time of the write in nanoseconds (or one
// above the row's, if that is later), so that a new owner's write wins
// over its predecessor's without reading it back first.
type endpointCodec struct{}

func (endpointCodec) Decode(value []byte) (schemas.EndpointState, error) {
	var st schemas.EndpointState
	err := json.Unmarshal(value, &st)
	return st, err
}
func (endpointCodec) Encode(st schemas.EndpointState) ([]byte, error) { return json.Marshal(st) }
func (endpointCodec) Key(st schemas.EndpointState) string             { return st.WebhookID }
func (endpointCodec) Version(st schemas.EndpointState) int64          { return st.Version }
func (endpointCodec) Deleted(schemas.EndpointState) bool              { return false }

// EndpointStates is every endpoint's state as its owning sender published
// it on hookline.endpoints, for any process (the API shows the breaker and
// the concurrency limit of endpoints whose sender runs elsewhere).
type EndpointStates struct {
	t *table.Table[schemas.EndpointState]
}

// NewEndpointStates returns the states; Run fills them.
func NewEndpointStates(b *broker.Broker, log *slog.Logger) *EndpointStates {
	return &EndpointStates{t: table.New(b, schemas.TopicEndpoints, endpointCodec{}, nil, log)}
}

// Run follows hookline.endpoints until ctx ends.
func (e *EndpointStates) Run(ctx context.Context) error { return e.t.Run(ctx) }

// State is the endpoint's breaker: closed when no sender has reported one.
func (e *EndpointStates) State(webhookID string) string {
	if row, ok := e.t.Get(webhookID); ok && row.Breaker != "" {
		return row.Breaker
	}
	return BreakerClosed
}

// Limit is the endpoint's concurrency limit, 0 when no sender has
// reported one.
func (e *EndpointStates) Limit(webhookID string) int {
	row, _ := e.t.Get(webhookID)
	return row.ConcurrencyLimit
}
