package api

import (
	"bytes"
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
	if err := s.deps.Events.PublishEvents(r.Context(), evs); err != nil {
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
	writeJSON(w, http.StatusAccepted, publishedBody{IDs: ids})
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
	if err := fastjson.Unmarshal(body, &raws); err != nil {
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
