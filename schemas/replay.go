package schemas

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"
)

// TopicReplays holds replay state (SPEC §5): compacted, keyed by replay id,
// each message the whole state of one replay after a change.
const TopicReplays = "hookline.replays"

// Replay states (SPEC §5). Only running moves on; the others are final.
const (
	ReplayRunning   = "running"
	ReplayDone      = "done"
	ReplayCancelled = "cancelled"
	ReplayFailed    = "failed"
)

// MaxReplayWebhooks bounds the webhooks of one replay.
const MaxReplayWebhooks = 100

// Errors of replay reads and changes, for the API to turn into answers.
var (
	// ErrReplayNotFound: no replay of the tenant has that id.
	ErrReplayNotFound = errors.New("replay not found")
	// ErrReplayFinished: the replay is no longer running, so it cannot be
	// cancelled.
	ErrReplayFinished = errors.New("replay already finished")
)

// ReplayPosition is a point of hookline.events: a time (the Kafka timestamp
// of the messages), or an offset per partition, keyed by the partition
// number in decimal as JSON object keys must be strings.
type ReplayPosition struct {
	Time    *time.Time       `json:"time,omitempty"`
	Offsets map[string]int64 `json:"offsets,omitempty"`
}

// PartitionOffsets returns Offsets by partition number; call it only on a
// validated position.
func (p ReplayPosition) PartitionOffsets() map[int]int64 {
	out := make(map[int]int64, len(p.Offsets))
	for k, v := range p.Offsets {
		n, _ := strconv.Atoi(k)
		out[n] = v
	}
	return out
}

// validate checks one position; field is where it sits in the request.
func (p ReplayPosition) validate(field string) error {
	switch {
	case p.Time == nil && p.Offsets == nil:
		return &FieldError{Field: field, Message: "needs time or offsets"}
	case p.Time != nil && p.Offsets != nil:
		return &FieldError{Field: field, Message: "takes time or offsets, not both"}
	case p.Time != nil && p.Time.IsZero():
		return &FieldError{Field: field + ".time", Message: "must be an RFC 3339 time"}
	case p.Offsets != nil && len(p.Offsets) == 0:
		return &FieldError{Field: field + ".offsets", Message: "needs at least one partition"}
	}
	for k, v := range p.Offsets {
		n, err := strconv.Atoi(k)
		if err != nil || n < 0 || strconv.Itoa(n) != k {
			return &FieldError{Field: field + ".offsets." + k, Message: "the key must be a partition number"}
		}
		if v < 0 {
			return &FieldError{Field: field + ".offsets." + k, Message: "must not be negative"}
		}
	}
	return nil
}

// ReplayRequest is the body of POST /v1/replays: re-run matching over
// hookline.events for the webhooks named, from a position to another; To
// nil is the end of every partition when the replay starts.
type ReplayRequest struct {
	WebhookIDs []string        `json:"webhook_ids"`
	From       *ReplayPosition `json:"from"`
	To         *ReplayPosition `json:"to,omitempty"`
	// DryRun counts what would be enqueued and enqueues nothing.
	DryRun bool `json:"dry_run"`
}

// Validate checks what can be checked without the broker or the webhooks:
// the partitions and whether the webhooks exist are the caller's to check.
func (r *ReplayRequest) Validate() error {
	switch {
	case len(r.WebhookIDs) == 0:
		return &FieldError{Field: "webhook_ids", Message: "needs at least one webhook id"}
	case len(r.WebhookIDs) > MaxReplayWebhooks:
		return &FieldError{Field: "webhook_ids", Message: fmt.Sprintf("takes at most %d webhook ids", MaxReplayWebhooks)}
	case r.From == nil:
		return &FieldError{Field: "from", Message: "is required"}
	}
	seen := make(map[string]bool, len(r.WebhookIDs))
	for i, id := range r.WebhookIDs {
		field := fmt.Sprintf("webhook_ids[%d]", i)
		if id == "" {
			return &FieldError{Field: field, Message: "must not be empty"}
		}
		if seen[id] {
			return &FieldError{Field: field, Message: "is listed twice"}
		}
		seen[id] = true
	}
	if err := r.From.validate("from"); err != nil {
		return err
	}
	if r.To == nil {
		return nil
	}
	if err := r.To.validate("to"); err != nil {
		return err
	}
	if r.From.Time != nil && r.To.Time != nil && !r.From.Time.Before(*r.To.Time) {
		return &FieldError{Field: "to.time", Message: "must be later than from.time"}
	}
	if r.From.Offsets != nil && r.To.Offsets != nil {
		for k, to := range r.To.Offsets {
			from, ok := r.From.Offsets[k]
			if !ok {
				return &FieldError{Field: "to.offsets." + k, Message: "names a partition that from.offsets does not"}
			}
			if to < from {
				return &FieldError{Field: "to.offsets." + k, Message: "must not be before from.offsets." + k}
			}
		}
	}
	return nil
}

// ReplayPartition is the stretch of one partition of hookline.events a
// replay reads, fixed when the replay starts: offsets Start (inclusive) to
// End (exclusive), and Next, the first offset whose jobs are not known to
// be produced (the checkpoint).
type ReplayPartition struct {
	Partition int   `json:"partition"`
	Start     int64 `json:"start"`
	End       int64 `json:"end"`
	Next      int64 `json:"next"`
}

// Replay is one message on hookline.replays, keyed by its id: the whole
// state of a replay after a change. The topic is compacted: the last
// message of a key is the replay's state.
type Replay struct {
	ID         string          `json:"id"`
	Tenant     string          `json:"tenant"`
	WebhookIDs []string        `json:"webhook_ids"`
	From       ReplayPosition  `json:"from"`
	To         *ReplayPosition `json:"to,omitempty"`
	DryRun     bool            `json:"dry_run"`
	State      string          `json:"state"`
	// Error says why a replay failed.
	Error string `json:"error,omitempty"`
	// Scanned counts the events read, Matched the (event, webhook) matches,
	// Enqueued the jobs produced (none in a dry run).
	Scanned  int64 `json:"scanned"`
	Matched  int64 `json:"matched"`
	Enqueued int64 `json:"enqueued"`
	// Partitions are the stretches to read, sorted by partition.
	Partitions []ReplayPartition `json:"partitions"`
	CreatedAt  time.Time         `json:"created_at"`
	UpdatedAt  time.Time         `json:"updated_at"`
	// Version grows by one with every change; readers of the topic ignore
	// a change older than the state they hold.
	Version int64 `json:"version"`
}

// Finished reports a replay in a final state.
func (r *Replay) Finished() bool { return r.State != ReplayRunning }

// PublicReplay is a replay as the API returns it.
type PublicReplay struct {
	ID         string            `json:"id"`
	State      string            `json:"state"`
	Error      string            `json:"error,omitempty"`
	Scanned    int64             `json:"scanned"`
	Matched    int64             `json:"matched"`
	Enqueued   int64             `json:"enqueued"`
	From       ReplayPosition    `json:"from"`
	To         *ReplayPosition   `json:"to,omitempty"`
	DryRun     bool              `json:"dry_run"`
	WebhookIDs []string          `json:"webhook_ids"`
	Partitions []ReplayPartition `json:"partitions"`
	CreatedAt  time.Time         `json:"created_at"`
	UpdatedAt  time.Time         `json:"updated_at"`
}

// Public returns the API view of the replay, times in UTC.
func (r Replay) Public() PublicReplay {
	utc := func(p ReplayPosition) ReplayPosition {
		if p.Time != nil {
			t := p.Time.UTC()
			p.Time = &t
		}
		return p
	}
	out := PublicReplay{
		ID: r.ID, State: r.State, Error: r.Error, Scanned: r.Scanned, Matched: r.Matched, Enqueued: r.Enqueued,
		From: utc(r.From), DryRun: r.DryRun, WebhookIDs: r.WebhookIDs, Partitions: r.Partitions,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(),
	}
	if r.To != nil {
		to := utc(*r.To)
		out.To = &to
	}
	if out.WebhookIDs == nil {
		out.WebhookIDs = []string{}
	}
	if out.Partitions == nil {
		out.Partitions = []ReplayPartition{}
	}
	return out
}

// SortReplays orders replays newest first (by creation, then id).
func SortReplays(rs []Replay) {
	slices.SortFunc(rs, func(a, b Replay) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
}
