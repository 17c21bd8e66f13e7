package schemas

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	fastjson "github.com/segmentio/encoding/json"

	"github.com/google/uuid"
)

// Event is an input event as producers publish it to hookline.events
// (SPEC §2). Data, Changes and Context are kept as raw JSON: the pipeline
// passes them through without re-encoding them.
type Event struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Resource   string          `json:"resource"`
	Trigger    string          `json:"trigger"`
	ResourceID string          `json:"resource_id"`
	Tenant     string          `json:"tenant,omitempty"`
	OccurredAt time.Time       `json:"occurred_at"`
	Related    []Related       `json:"related,omitempty"`
	Data       json.RawMessage `json:"data,omitempty"`
	Changes    json.RawMessage `json:"changes,omitempty"`
	Context    json.RawMessage `json:"context,omitempty"`
}

// Related names a resource an event is about besides its own.
type Related struct {
	Resource string `json:"resource"`
	ID       string `json:"id"`
}

// DefaultTenant is the tenant of events and webhooks when no API tokens are
// configured, and of events published without a tenant.
const DefaultTenant = "default"

// FieldError is a validation error that names the offending field. The API
// turns it into a 400 with that field; the matcher writes its text to
// hookline.dead.
type FieldError struct {
	Field   string
	Message string
}

func (e *FieldError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// ErrNotJSON wraps every decoding failure that is not a missing field.
var ErrNotJSON = errors.New("not a JSON object")

// pastTense maps SPEC §2 trigger words to the suffix of the derived type.
var pastTense = map[string]string{
	"create":   "created",
	"update":   "updated",
	"delete":   "deleted",
	"paid":     "paid",
	"scan":     "scanned",
	"relation": "related",
	"reorder":  "reordered",
}

// TypeFor derives an event type from its resource and trigger (SPEC §2).
func TypeFor(resource, trigger string) string {
	if t, ok := pastTense[trigger]; ok {
		return resource + "." + t
	}
	return resource + "." + trigger
}

// DecodeEvent parses and validates one input event, filling the defaults of
// SPEC §2: the id defaultID, the derived type, the default tenant and the
// occurrence time now. It never panics, whatever the input.
func DecodeEvent(raw []byte, now time.Time, defaultID string) (Event, error) {
	return decodeEvent(raw, now, func() string { return defaultID })
}

// DecodeEventAt is DecodeEvent for an event read from topic at partition
// and offset: an event without an id gets PositionEventID, derived only
// then (a SHA-1 and its text cost more than the rest of the matcher's
// work on an event that has its own id).
func DecodeEventAt(raw []byte, now time.Time, topic string, partition int, offset int64) (Event, error) {
	return decodeEvent(raw, now, func() string { return PositionEventID(topic, partition, offset) })
}

func decodeEvent(raw []byte, now time.Time, defaultID func() string) (Event, error) {
	var ev Event
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || raw[0] != '{' {
		return ev, fmt.Errorf("%w: message must be a JSON object", ErrNotJSON)
	}
	// data, changes and context point into raw instead of being copied:
	// an event lives as long as the work on its record.
	rest, err := fastjson.Parse(raw, &ev, fastjson.DontCopyRawMessage)
	if err == nil && len(bytes.TrimSpace(rest)) > 0 {
		err = errors.New("unexpected data after the JSON object")
	}
	if err != nil {
		return ev, fmt.Errorf("%w: %v", ErrNotJSON, err)
	}
	if ev.ID == "" {
		ev.ID = defaultID()
	}
	if err := ev.Normalize(now); err != nil {
		return ev, err
	}
	return ev, nil
}

// Normalize validates the required fields and fills the defaults.
func (ev *Event) Normalize(now time.Time) error {
	ev.Resource = strings.TrimSpace(ev.Resource)
	ev.Trigger = strings.TrimSpace(ev.Trigger)
	switch {
	case ev.Resource == "":
		return &FieldError{Field: "resource", Message: "is required"}
	case ev.Trigger == "":
		return &FieldError{Field: "trigger", Message: "is required"}
	case ev.ResourceID == "":
		return &FieldError{Field: "resource_id", Message: "is required"}
	case strings.ContainsAny(ev.Resource, ".* \t"):
		return &FieldError{Field: "resource", Message: "must be one word without dots or wildcards"}
	}
	for _, f := range []struct {
		name string
		raw  *json.RawMessage
	}{{"data", &ev.Data}, {"changes", &ev.Changes}, {"context", &ev.Context}} {
		v := bytes.TrimSpace(*f.raw)
		switch {
		case len(v) == 0 || string(v) == "null":
			*f.raw = nil // absent
		case v[0] != '{':
			return &FieldError{Field: f.name, Message: "must be a JSON object"}
		}
	}
	for i, r := range ev.Related {
		if r.Resource == "" || r.ID == "" {
			return &FieldError{Field: fmt.Sprintf("related[%d]", i), Message: "needs resource and id"}
		}
	}
	if ev.ID == "" {
		ev.ID = uuid.NewString()
	}
	if ev.Type == "" {
		ev.Type = TypeFor(ev.Resource, ev.Trigger)
	} else if !ValidEventPattern(ev.Type) || strings.Contains(ev.Type, "*") {
		return &FieldError{Field: "type", Message: "must be resource.trigger, without wildcards"}
	}
	if ev.Tenant == "" {
		ev.Tenant = DefaultTenant
	}
	if ev.OccurredAt.IsZero() {
		ev.OccurredAt = now
	}
	ev.OccurredAt = ev.OccurredAt.UTC()
	return nil
}
