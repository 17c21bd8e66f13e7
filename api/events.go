package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	fastjson "github.com/segmentio/encoding/json"

	"github.com/hookline/hookline/schemas"
)

type publishedBody struct {
	IDs []string `json:"ids"`
	// Duplicates are the ids published already within the window: not
	// published again.
	Duplicates []string `json:"duplicates,omitempty"`
}

// publishEvents takes one event object or an array of them. Every event is
// decoded and validated before any is published, so a request is published
// whole or not at all.
func (s *Server) publishEvents(w http.ResponseWriter, r *http.Request) {
	body, aerr := readBody(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	evs, aerr := s.decodeEvents(body, tenantOf(r))
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	// An event this process published already (a producer's retry after
	// a timeout) is not published again: it would be delivered a second
	// time under new delivery ids.
	tenant := tenantOf(r)
	fresh := make([]schemas.Event, 0, len(evs))
	var dups []string
	for _, ev := range evs {
		if s.published.seen(tenant, ev.ID) {
			dups = append(dups, ev.ID)
			continue
		}
		fresh = append(fresh, ev)
	}
	if err := s.publish(r.Context(), fresh); err != nil {
		var tooLarge *EventTooLargeError
		if errors.As(err, &tooLarge) {
			field := ""
			if bytes.HasPrefix(bytes.TrimSpace(body), []byte("[")) {
				field = fmt.Sprintf("[%d]", tooLarge.Index)
			}
			writeError(w, &apiError{Status: http.StatusRequestEntityTooLarge, Code: codeTooLarge, Field: field,
				Message: fmt.Sprintf("the event is %d bytes encoded, over the broker's message size limit of %d bytes", tooLarge.Size, tooLarge.Limit)})
			return
		}
		s.dependencyFailed(w, r, "publish events", err)
		return
	}
	ids := make([]string, len(evs))
	for i, ev := range evs {
		ids[i] = ev.ID
	}
	for _, ev := range fresh {
		s.published.add(tenant, ev.ID)
	}
	writeJSON(w, http.StatusAccepted, publishedBody{IDs: ids, Duplicates: dups})
}

// publish publishes events; none is nothing to do.
func (s *Server) publish(ctx context.Context, evs []schemas.Event) error {
	if len(evs) == 0 {
		return nil
	}
	return s.deps.Events.PublishEvents(ctx, evs)
}

// decodeEvents splits the body into events and validates each one for the
// caller's tenant. Field names of an array's events are prefixed "[i].".
func (s *Server) decodeEvents(body []byte, tenant string) ([]schemas.Event, *apiError) {
	body = bytes.TrimSpace(body)
	if len(body) == 0 {
		return nil, badJSON("the request body is empty")
	}
	if body[0] != '[' {
		ev, aerr := s.decodeEvent(body, tenant, "")
		if aerr != nil {
			return nil, aerr
		}
		return []schemas.Event{ev}, nil
	}
	var raws []json.RawMessage
	rest, err := fastjson.Parse(body, &raws, fastjson.DontCopyRawMessage)
	if err == nil && len(bytes.TrimSpace(rest)) > 0 {
		return nil, badJSON("unexpected data after the JSON array")
	}
	if err != nil {
		return nil, decodeError(err, "")
	}
	switch {
	case len(raws) == 0:
		return nil, invalid("", "the array holds no events")
	case len(raws) > s.cfg.MaxEvents:
		return nil, invalid("", "at most %d events per request, not %d", s.cfg.MaxEvents, len(raws))
	}
	evs := make([]schemas.Event, 0, len(raws))
	seen := make(map[string]int, len(raws))
	for i, raw := range raws {
		prefix := fmt.Sprintf("[%d].", i)
		ev, aerr := s.decodeEvent(raw, tenant, prefix)
		if aerr != nil {
			return nil, aerr
		}
		if j, dup := seen[ev.ID]; dup {
			return nil, invalid(prefix+"id", "repeats the id of event [%d]", j)
		}
		seen[ev.ID] = i
		evs = append(evs, ev)
	}
	return evs, nil
}

func (s *Server) decodeEvent(raw []byte, tenant, prefix string) (schemas.Event, *apiError) {
	var ev schemas.Event
	if aerr := decodeObject(raw, &ev, prefix); aerr != nil {
		return ev, aerr
	}
	if ev.Tenant != "" && ev.Tenant != tenant {
		return ev, invalid(prefix+"tenant", "must be empty or the tenant of the API token")
	}
	ev.Tenant = tenant
	if ev.ID == "" {
		ev.ID = s.deps.NewID()
	}
	if err := ev.Normalize(s.now()); err != nil {
		if aerr, ok := fieldError(err, prefix); ok {
			return ev, aerr
		}
		return ev, invalid(strings.TrimSuffix(prefix, "."), "%s", err.Error())
	}
	ev.OccurredAt = ev.OccurredAt.UTC()
	return ev, nil
}
