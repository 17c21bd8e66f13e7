package records

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	fastjson "github.com/segmentio/encoding/json"
	"github.com/segmentio/kafka-go"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/schemas"
)

// Marshal encodes v as JSON without escaping <, > and &: a body full of
// HTML keeps its size (json.Marshal would write each < as six bytes).
// Every job and attempt goes through it, so it uses segmentio/encoding's
// encoder: the same JSON as encoding/json (map keys sorted), about three
// times faster on a job with a 1 KiB payload (BenchmarkMarshalJob), and it
// copies a payload (json.RawMessage) as it is instead of compacting it
// again. It does not check that payload either (TrustRawMessage: 2.7 →
// 1.0 µs a job): every json.RawMessage in a record was decoded from JSON
// (the API's events, a record read back) or written by Hookline's own
// encoders (envelopes, batches).
func Marshal(v any) ([]byte, error) {
	b := buffers.Get().(*[]byte)
	out, err := fastjson.Append((*b)[:0], v, fastjson.SortMapKeys|fastjson.TrustRawMessage)
	var record []byte
	if err == nil {
		record = bytes.Clone(out)
	}
	if cap(out) <= 1<<20 { // a rare large record is not kept for reuse
		*b = out
		buffers.Put(b)
	}
	return record, err
}

// buffers keep Marshal from growing a slice from nothing for every record.
var buffers = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

// mustMarshal encodes the records' own types, which always encode.
func mustMarshal(v any) []byte {
	b, err := Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("records: %T does not encode: %v", v, err))
	}
	return b
}

// DecodeJob decodes a job record as Unmarshal does, except that the
// payload is not copied: job.Payload points into value, which must not
// change while the job is in use. The sender keeps the record until the job
// is finished anyway, so a copy of each payload only doubled what a held job
// takes (BenchmarkDecodeJob).
func DecodeJob(value []byte, job *schemas.Job) error {
	rest, err := fastjson.Parse(value, job, fastjson.DontCopyRawMessage)
	if rest = bytes.TrimLeft(rest, " \t\r\n"); len(rest) != 0 && err == nil {
		err = fmt.Errorf("invalid character %q after the job", rest[0])
	}
	return err
}

// HeaderDueAt carries a waiting job's due_at (RFC 3339) beside the job, so
// that a retry tier can hold the job until then without decoding it.
const HeaderDueAt = "hookline-due-at"

// Job is a delivery job on topic (hookline.deliveries or a retry tier),
// keyed by webhook id so that one endpoint's jobs stay in order.
func Job(topic string, job schemas.Job) kafka.Message {
	m := kafka.Message{Topic: topic, Key: []byte(job.WebhookID), Value: mustMarshal(job)}
	if !job.DueAt.IsZero() {
		m.Headers = []kafka.Header{{Key: HeaderDueAt, Value: job.DueAt.UTC().AppendFormat(nil, time.RFC3339Nano)}}
	}
	return m
}

// DelayedJob is a job on a delay topic (a retry tier or hookline.overflow)
// whose record is due at due, which the reader holds it until: the write
// time plus the topic's exact delay, so that due times grow along each
// partition. The job's own due_at may be later: it waits on from a
// shorter topic when it comes back.
func DelayedJob(topic string, job schemas.Job, due time.Time) kafka.Message {
	headers := []kafka.Header{{Key: HeaderDueAt, Value: due.UTC().AppendFormat(nil, time.RFC3339Nano)}}
	if job.Reason == schemas.RetryEndpointBusy {
		headers = append(headers, kafka.Header{Key: HeaderForRoom, Value: []byte("1")})
	}
	return kafka.Message{Topic: topic, Key: []byte(job.WebhookID), Value: mustMarshal(job), Headers: headers}
}

// HeaderForRoom marks a job put off for room at its endpoint (Reason
// RetryEndpointBusy): it may wait where it is until there is room
// (the sender's parking), where a job waiting for a time may not.
const HeaderForRoom = "hookline-for-room"

// ForRoom reports whether a delayed job waits for room (HeaderForRoom).
func ForRoom(m kafka.Message) bool { return broker.Header(m, HeaderForRoom) != "" }

// DueAt is when a job message may be sent: its HeaderDueAt, or, for a
// message written without it, the job's due_at; zero for at once.
func DueAt(m kafka.Message) time.Time {
	if v := broker.Header(m, HeaderDueAt); v != "" {
		if t, err := time.Parse(time.RFC3339Nano, v); err == nil {
			return t
		}
	}
	var head struct {
		DueAt time.Time `json:"due_at"`
	}
	fastjson.Unmarshal(m.Value, &head)
	return head.DueAt
}

// Attempt is an attempt record on hookline.attempts, keyed by delivery id.
func Attempt(a schemas.Attempt) kafka.Message {
	return kafka.Message{Topic: schemas.TopicAttempts, Key: []byte(a.DeliveryID), Value: mustMarshal(a)}
}

// DeadJob saves a delivery that failed for good on hookline.dead: the job
// (with its payload) and its last attempt (whose request body the job
// already holds, so it is left out).
func DeadJob(job schemas.Job, last schemas.Attempt) kafka.Message {
	reason := fmt.Sprintf("delivery failed after %d attempt(s)", last.N)
	if last.StatusCode != 0 {
		reason += fmt.Sprintf(": status %d %s", last.StatusCode, http.StatusText(last.StatusCode))
	}
	if last.Error != "" {
		reason += ": " + last.Error
	}
	last.RequestBody = ""
	return deadJob(job, last, reason)
}

func deadJob(job schemas.Job, last schemas.Attempt, reason string) kafka.Message {
	v := mustMarshal(schemas.DeadLetter{Reason: reason, At: last.At, Job: &job, LastAttempt: &last})
	return kafka.Message{Topic: schemas.TopicDead, Key: []byte(job.WebhookID), Value: v,
		Headers: []kafka.Header{{Key: broker.HeaderReason, Value: []byte(reason)}}}
}

// isJobTopic reports whether topic carries delivery jobs.
func isJobTopic(topic string) bool {
	return topic == schemas.TopicDeliveries || topic == schemas.TopicOverflow || strings.HasPrefix(topic, schemas.TopicRetryPrefix)
}

// Oversize is the broker.Oversize of every stage: what goes out instead of
// a record over the limit.
//   - A job: it is never sent. Its delivery fails with a too_large attempt
//     (in the history, without the body) and the job goes to hookline.dead
//     without its payload.
//   - An attempt: the same attempt without its request body, and if that is
//     not enough without its response body too; the history says so.
//   - A dead letter of a failed delivery: without the payload and bodies.
//   - Anything else: broker.TooLargeDeadLetter.
func Oversize(m kafka.Message, limit int) []kafka.Message {
	switch {
	case isJobTopic(m.Topic):
		var job schemas.Job
		if json.Unmarshal(m.Value, &job) == nil && job.DeliveryID != "" {
			return tooLargeJob(job, broker.Size(m), limit)
		}
	case m.Topic == schemas.TopicAttempts:
		var a schemas.Attempt
		if json.Unmarshal(m.Value, &a) == nil && a.DeliveryID != "" {
			return []kafka.Message{smallerAttempt(a, limit)}
		}
	case m.Topic == schemas.TopicDead:
		var d schemas.DeadLetter
		if json.Unmarshal(m.Value, &d) == nil && d.Job != nil {
			job := *d.Job
			job.Payload = nil
			var last schemas.Attempt
			if d.LastAttempt != nil {
				last = *d.LastAttempt
				last.RequestBody, last.ResponseBody = "", ""
			}
			return []kafka.Message{deadJob(job, last, d.Reason)}
		}
	}
	return []kafka.Message{broker.TooLargeDeadLetter(m, limit)}
}

// TooLargeError is the error of a delivery whose job is over the limit.
func TooLargeError(size, limit int) string {
	return fmt.Sprintf("%s: the delivery is %d bytes, over the broker's message size limit of %d bytes; not sent",
		broker.ReasonTooLarge, size, limit)
}

func tooLargeJob(job schemas.Job, size, limit int) []kafka.Message {
	att := schemas.Attempt{
		DeliveryID: job.DeliveryID, WebhookID: job.WebhookID, Tenant: job.Tenant,
		EventIDs: job.EventIDs, EventType: job.EventType, N: job.Attempts + 1,
		State: schemas.StateFailed, At: time.Now().UTC(), DeliveryCreatedAt: job.CreatedAt,
		Error: TooLargeError(size, limit), RedeliveryOf: job.RedeliveryOf, ReplayID: job.ReplayID,
	}
	if len(att.EventIDs) > 100 { // a batch's ids could themselves be too many
		att.EventIDs = att.EventIDs[:100]
	}
	job.Payload = nil
	dead := job
	dead.EventIDs = att.EventIDs
	return []kafka.Message{Attempt(att), deadJob(dead, att, att.Error)}
}

// smallerAttempt drops an attempt's bodies until it fits, saying so.
func smallerAttempt(a schemas.Attempt, limit int) kafka.Message {
	if a.RequestBody != "" {
		a.Error = join(a.Error, fmt.Sprintf("request body of %d bytes not stored: over the message size limit", len(a.RequestBody)))
		a.RequestBody = ""
		if m := Attempt(a); broker.Size(m) <= limit {
			return m
		}
	}
	a.Error = join(a.Error, fmt.Sprintf("response body of %d bytes not stored: over the message size limit", len(a.ResponseBody)))
	a.ResponseBody = ""
	return Attempt(a)
}

func join(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}

// Event is an event Hookline publishes itself (schemas.OperationalResource)
// on hookline.events, keyed by its resource id like any event.
func Event(ev schemas.Event) kafka.Message {
	return kafka.Message{Topic: schemas.TopicEvents, Key: []byte(ev.ResourceID), Value: mustMarshal(ev)}
}
