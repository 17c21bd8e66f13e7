package matcher

import (
	"container/heap"
	"encoding/json"
	"time"

	"github.com/hookline/hookline/schemas"
)

// Batcher groups the matches of batching webhooks (HALO) into one delivery
// each: per webhook and, by mode, per event type and resource (same_event),
// per event type (same_type) or all together (any). A batch goes out when
// it holds max_items, or wait_seconds after its first event was stored.
// The clock is the caller's: tests drive it, and the first event's Kafka
// timestamp starts the wait, so a batch rebuilt after a restart keeps its
// deadline.
type Batcher struct {
	open  map[string]*openBatch
	queue deadlines
	// maxBytes caps a batch's job: a batch closes before a match would take
	// it past the broker's message size limit. 0: no cap.
	maxBytes int
}

// batchOverhead is what a batch's job holds besides its envelopes and
// event ids: the job's own fields.
const batchOverhead = 2048

type openBatch struct {
	key      string
	deadline time.Time
	matches  []Match
	tokens   []any
	bytes    int // the job's size so far, about
	index    int // in the deadline heap
	// part and first are the partition and offset of its first event
	// (part -1: unknown): it holds that partition's commit from there.
	part  int
	first int64
}

// Batch is a batch ready to send: its job, and the tokens of the events in
// it, given back to the caller to mark them done once the job is produced.
type Batch struct {
	Job    schemas.Job
	Tokens []any
}

// NewBatcher returns an empty batcher whose batches stay under maxBytes
// (0: no cap).
func NewBatcher(maxBytes int) *Batcher {
	return &Batcher{open: map[string]*openBatch{}, maxBytes: maxBytes}
}

// Add puts a match in its batch; started is when the match's event was
// stored. It returns the batches that closed: the open one if the match
// would have taken it past the size cap (the match then starts the next
// one), and the match's own if the match filled it.
func (b *Batcher) Add(m Match, token any, started time.Time) []*Batch {
	return b.AddAt(m, token, started, -1, 0)
}

// AddAt is Add of an event read at offset of partition part, which the
// batch then holds uncommitted (Pinning).
func (b *Batcher) AddAt(m Match, token any, started time.Time, part int, offset int64) []*Batch {
	key := batchKey(m)
	size := len(m.Job.Payload) + 1
	for _, id := range m.Job.EventIDs {
		size += len(id) + 3
	}
	var out []*Batch
	ob, ok := b.open[key]
	if ok && b.maxBytes > 0 && ob.bytes+size > b.maxBytes {
		heap.Remove(&b.queue, ob.index)
		out = append(out, b.close(ob))
		ok = false
	}
	if !ok {
		ob = &openBatch{key: key, bytes: batchOverhead, deadline: started.Add(time.Duration(m.Batching.WaitSeconds) * time.Second),
			part: part, first: offset}
		b.open[key] = ob
		heap.Push(&b.queue, ob)
	}
	// The envelope's raw parts point into the event's record (decoded
	// without copies) and the batch needs only the job, whose payload is
	// its own. (The match's token, the input, still holds its record
	// until the batch goes out, as it did before: at most the bound of
	// uncommitted events behind it, MaxUncommitted/2.)
	m.Envelope.Data, m.Envelope.Changes, m.Envelope.CurrentContext = nil, nil, nil
	ob.matches = append(ob.matches, m)
	ob.tokens = append(ob.tokens, token)
	ob.bytes += size
	if len(ob.matches) >= m.Batching.MaxItems {
		heap.Remove(&b.queue, ob.index)
		out = append(out, b.close(ob))
	}
	return out
}

// Due closes and returns every batch whose deadline is not after now.
func (b *Batcher) Due(now time.Time) []*Batch {
	var out []*Batch
	for len(b.queue) > 0 && !b.queue[0].deadline.After(now) {
		out = append(out, b.close(heap.Pop(&b.queue).(*openBatch)))
	}
	return out
}

// Pinning closes and returns the open batches whose first event is on
// partition part at least limit offsets before offset: they hold the
// partition's commit back by that much, and past the reader's bound of
// uncommitted events (MaxUncommitted) its fetching would stop for every
// webhook until they close. Such a batch goes out early, with what it has.
func (b *Batcher) Pinning(part int, offset, limit int64) []*Batch {
	var pinning []*openBatch
	for _, ob := range b.queue {
		if ob.part == part && offset-ob.first >= limit {
			pinning = append(pinning, ob)
		}
	}
	out := make([]*Batch, 0, len(pinning))
	for _, ob := range pinning {
		heap.Remove(&b.queue, ob.index) // index kept by Swap as the heap moves
		out = append(out, b.close(ob))
	}
	return out
}

// Next is the earliest deadline of an open batch.
func (b *Batcher) Next() (time.Time, bool) {
	if len(b.queue) == 0 {
		return time.Time{}, false
	}
	return b.queue[0].deadline, true
}

// Open is the number of open batches.
func (b *Batcher) Open() int { return len(b.open) }

func (b *Batcher) close(ob *openBatch) *Batch {
	delete(b.open, ob.key)
	return &Batch{Job: batchJob(ob.matches), Tokens: ob.tokens}
}

func batchKey(m Match) string {
	env := &m.Envelope
	switch m.Batching.Mode {
	case schemas.BatchSameEvent:
		return env.WebhookID + "\x00" + env.EventType + "\x00" + env.ResourceID
	case schemas.BatchSameType:
		return env.WebhookID + "\x00" + env.EventType
	default:
		return env.WebhookID
	}
}

// batchJob is one delivery of a batch: a JSON array of the envelopes, each
// keeping its own id and event id so that a receiver can tell an event it
// has seen before, under a delivery id derived from the first event.
func batchJob(ms []Match) schemas.Job {
	first := ms[0].Job
	body := make([]byte, 0, 64*len(ms))
	body = append(body, '[')
	job := schemas.Job{
		DeliveryID: DeliveryID(first.CreatedAt, first.EventIDs[0], first.WebhookID, "batch"),
		WebhookID:  first.WebhookID, Tenant: first.Tenant, EventType: first.EventType,
		ResourceID: first.ResourceID, CreatedAt: first.CreatedAt,
	}
	for i, m := range ms {
		if i > 0 {
			body = append(body, ',')
		}
		body = append(body, m.Job.Payload...)
		job.EventIDs = append(job.EventIDs, m.Job.EventIDs...)
		if m.Job.EventType != job.EventType {
			job.EventType = "batch"
		}
		if m.Job.ResourceID != job.ResourceID {
			job.ResourceID = ""
		}
	}
	job.Payload = json.RawMessage(append(body, ']'))
	return job
}

// deadlines is a min-heap of open batches by deadline.
type deadlines []*openBatch

func (d deadlines) Len() int           { return len(d) }
func (d deadlines) Less(i, j int) bool { return d[i].deadline.Before(d[j].deadline) }
func (d deadlines) Swap(i, j int) {
	d[i], d[j] = d[j], d[i]
	d[i].index, d[j].index = i, j
}
func (d *deadlines) Push(x any) {
	ob := x.(*openBatch)
	ob.index = len(*d)
	*d = append(*d, ob)
}
func (d *deadlines) Pop() any {
	old := *d
	ob := old[len(old)-1]
	*d = old[:len(old)-1]
	return ob
}
