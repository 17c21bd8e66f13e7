package schemas

import (
	"errors"
	"fmt"
	"strings"

	"github.com/hookline/hookline/condition"
	"github.com/hookline/hookline/payload"
)

// Batching modes (HALO).
const (
	BatchNone      = "none"
	BatchSameEvent = "same_event"
	BatchSameType  = "same_type"
	BatchAny       = "any"
)

// Batching limits and defaults.
const (
	DefaultBatchWait  = 10
	MaxBatchWait      = 600
	DefaultBatchItems = 100
	MaxBatchItems     = 1000
)

// Batching groups events into one delivery (HALO): same_event groups the
// occurrences of one event type for one resource, same_type one event type,
// any everything; WaitSeconds bounds how long the first event waits and
// MaxItems caps a batch.
type Batching struct {
	Mode        string `json:"mode"`
	WaitSeconds int    `json:"wait_seconds,omitempty"`
	MaxItems    int    `json:"max_items,omitempty"`
}

// normalized fills the defaults; mode none is no batching (nil).
func (b *Batching) normalized() *Batching {
	if b == nil || b.Mode == BatchNone && b.WaitSeconds == 0 && b.MaxItems == 0 {
		return nil
	}
	out := *b
	if out.WaitSeconds == 0 {
		out.WaitSeconds = DefaultBatchWait
	}
	if out.MaxItems == 0 {
		out.MaxItems = DefaultBatchItems
	}
	return &out
}

// Validate checks a batching setting.
func (b *Batching) Validate() error {
	if b == nil {
		return nil
	}
	switch b.Mode {
	case BatchSameEvent, BatchSameType, BatchAny:
	case BatchNone:
		return &FieldError{Field: "batching.mode", Message: "none takes no wait_seconds or max_items"}
	default:
		return &FieldError{Field: "batching.mode", Message: "must be one of none, same_event, same_type, any"}
	}
	if b.WaitSeconds < 1 || b.WaitSeconds > MaxBatchWait {
		return &FieldError{Field: "batching.wait_seconds", Message: fmt.Sprintf("must be 1 to %d", MaxBatchWait)}
	}
	if b.MaxItems < 1 || b.MaxItems > MaxBatchItems {
		return &FieldError{Field: "batching.max_items", Message: fmt.Sprintf("must be 1 to %d", MaxBatchItems)}
	}
	return nil
}

func validateCondition(src string) error {
	if strings.TrimSpace(src) == "" {
		return nil
	}
	if _, err := condition.Compile(src); err != nil {
		var ce *condition.Error
		if errors.As(err, &ce) {
			return &FieldError{Field: "condition", Message: ce.Error()}
		}
		return &FieldError{Field: "condition", Message: err.Error()}
	}
	return nil
}

// validateFields checks the paths of fields (package payload's rules); an
// empty list selects every field.
func validateFields(fields []string) error {
	if len(fields) == 0 {
		return nil
	}
	err := payload.ValidateFields(fields)
	var pe *payload.PathError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &pe) && pe.Index >= 0:
		return &FieldError{Field: fmt.Sprintf("fields[%d]", pe.Index), Message: fmt.Sprintf("%q %s", pe.Path, pe.Reason)}
	case errors.As(err, &pe):
		return &FieldError{Field: "fields", Message: pe.Reason}
	default:
		return &FieldError{Field: "fields", Message: err.Error()}
	}
}
