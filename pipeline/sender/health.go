package sender

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/pipeline/table"
	"github.com/hookline/hookline/schemas"
)

// healthFlush is how often changed endpoint states are written to
// hookline.endpoints. A crash loses at most this much of them.
const healthFlush = time.Second

// health tracks, per endpoint, since when every attempt has failed, so
// that a webhook failing for DisableAfter is disabled (SPEC §4). The
// owning sender keeps it in memory and writes changes to
// hookline.endpoints in the background, so that a lane never waits for a
// write; a sender that takes an endpoint over (a restart, a rebalance)
// goes on from the row there.
type health struct {
	t   *table.Table[schemas.EndpointState]
	log *slog.Logger

	mu sync.Mutex
	m  map[string]*endpointHealth // by webhook id
}

type endpointHealth struct {
	failingSince time.Time
	dirty        bool // changed since the last write
}

func newHealth(b *broker.Broker, log *slog.Logger) *health {
	return &health{t: table.New(b, schemas.TopicEndpoints, endpointCodec{}, nil, log), log: log, m: map[string]*endpointHealth{}}
}

// run follows hookline.endpoints and writes changes every healthFlush
// until ctx ends, then writes the last ones (for at most a few seconds).
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
		case <-ctx.Done():
			last, cancel := context.WithTimeout(follow, 3*time.Second)
			h.flush(last)
			cancel()
			stop()
			return <-done
		}
	}
}

// note records an attempt's outcome and returns since when the endpoint
// has failed (zero: it has not).
func (h *health) note(webhookID string, ok bool, at time.Time) time.Time {
	h.mu.Lock()
	defer h.mu.Unlock()
	st := h.m[webhookID]
	if st == nil {
		st = &endpointHealth{}
		if row, found := h.t.Get(webhookID); found {
			st.failingSince = row.FailingSince
		}
		h.m[webhookID] = st
	}
	switch {
	case ok && !st.failingSince.IsZero():
		st.failingSince, st.dirty = time.Time{}, true
	case !ok && st.failingSince.IsZero():
		st.failingSince, st.dirty = at.UTC(), true
	}
	return st.failingSince
}

// flush writes every changed state; one that fails stays changed and is
// written at the next flush.
func (h *health) flush(ctx context.Context) {
	h.mu.Lock()
	changed := map[string]time.Time{}
	for id, st := range h.m {
		if st.dirty {
			changed[id], st.dirty = st.failingSince, false
		}
	}
	h.mu.Unlock()
	for id, since := range changed {
		err := h.write(ctx, id, since)
		if err == nil {
			continue
		}
		if ctx.Err() == nil {
			h.log.Warn("could not write an endpoint's state; trying again", "webhook_id", id, "err", err)
		}
		h.mu.Lock()
		if st := h.m[id]; st != nil {
			st.dirty = true
		}
		h.mu.Unlock()
	}
}

// write publishes one endpoint's state, after the row's current version.
func (h *health) write(ctx context.Context, id string, since time.Time) error {
	var err error
	for range 3 {
		row, _ := h.t.Get(id)
		if row.FailingSince.Equal(since) && row.Version > 0 {
			return nil
		}
		next := schemas.EndpointState{WebhookID: id, FailingSince: since, UpdatedAt: time.Now().UTC(), Version: row.Version + 1}
		if err = h.t.Publish(ctx, next); !errors.Is(err, table.ErrConflict) {
			return err
		}
	}
	return err
}

// endpointCodec: a message of hookline.endpoints is an EndpointState keyed
// by webhook id.
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
