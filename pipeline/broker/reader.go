package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Reader reads topics with franz-go's kgo, as a member of a consumer group
// or from partitions of one topic at offsets. kgo rather than kafka-go
// because kafka-go's readers honour no transactions (segmentio/kafka-go#1332):
// they hand out the records of aborted transactions and the transaction
// markers. A Reader reads with read_committed isolation: records of an
// aborted transaction never reach a stage, and a transaction's control
// records come out as messages for which IsControl is true, so that a stage
// can mark their offsets done (and commit past them) without handling them.
//
// A group reader made with a due function holds back the records that are
// not due yet, per partition (see GroupReaderOf).
//
// It never commits by itself: CommitMessages commits what the stage says is
// done. FetchMessage must not be called from two goroutines at once.
type Reader struct {
	cl    *kgo.Client
	topic string // the topic of a partition reader (Pause)
	name  string // what it reads, in errors
	group bool
	due   func(kafka.Message) time.Time
	err   error // the client could not be made: every fetch fails with it

	// mu guards what follows: the rebalance callbacks run on kgo's
	// goroutine.
	mu sync.Mutex
	// buf holds polled records not handed out yet, in poll order; none of
	// them belongs to a held partition. With a preferred topic (Prefer),
	// buf holds its records and later the other topics'.
	buf   []*kgo.Record
	later []polled
	held  map[topicPartition]*hold
	// prefer is the topic whose records go out first; the others' wait
	// at most preferFor behind them.
	prefer    string
	preferFor time.Duration
	// paused are the partitions Pause stopped: a hold that empties does not
	// resume them.
	paused map[int32]bool

	// onRevoke, if set, is called when a rebalance takes partitions away
	// (lost: the session was lost, another member may have them already),
	// after what the reader held of them is dropped and before they are
	// given up: the stage fences them there (OnRevoke).
	onRevoke func(ctx context.Context, partitions map[string][]int32, lost bool)
}

type topicPartition struct {
	topic     string
	partition int32
}

// hold is a partition whose head is not due: its records, polled and not
// handed out, in offset order. The partition is paused while it holds any.
// polled is a record of a topic not preferred, with when it was polled.
type polled struct {
	rec *kgo.Record
	at  time.Time
}

type hold struct {
	recs []*kgo.Record
	due  time.Time // of recs[0]
}

// controlHeader marks a control record handed out as a kafka.Message.
const controlHeader = "\x00hookline-control"

// IsControl reports whether m is a transaction marker, not data: a stage
// marks it done and produces nothing for it.
func IsControl(m kafka.Message) bool {
	return len(m.Headers) == 1 && m.Headers[0].Key == controlHeader
}

func (b *Broker) readerOpts() []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(b.addrs...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(100 * time.Millisecond),
		kgo.FetchMaxBytes(4 << 20),
		kgo.WithDecompressor(codec),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
	}
}

// GroupReader returns a consumer-group reader of one topic that starts at
// the earliest offset for a new group and never commits by itself. Its
// group keeps kgo's default balancer (cooperative-sticky): a rebalance moves
// only the partitions that change hands.
func (b *Broker) GroupReader(topic, group string) *Reader {
	return b.groupReader(group, []string{topic}, nil)
}

// GroupReaderOf returns a consumer-group reader of several topics, one
// group over all of them, that starts at the earliest offset for a new
// group and never commits by itself.
//
// The group uses the range balancer, which gives partition p of every topic
// to the same member when every member subscribes to the same topics and
// the topics have equal partition counts: kgo's rangeBalancer.Balance
// (group_balancer.go, franz-go v1.22.2) walks each topic on its own, over
// the same member list sorted by instance and member id, and hands member i
// the same range of partition numbers (a quotient of the partition count
// over the members, plus one for the first count%members) in every topic
// (its rack-aware first phase runs only with BalanceRacks, which Hookline
// does not set). So records keyed alike in topics of equal partition counts
// are read by one process.
//
// due, if not nil, says when a record may be handed out; a zero time or a
// time past is at once, and a transaction marker is never asked about. A
// record not due yet is held, with every later record of its partition,
// and the partition is paused (kgo PauseFetchPartitions) until the head is
// due; meanwhile FetchMessage hands out the other partitions' records. A
// held head that is due comes out before anything else, the earliest due
// first, and its partition's next records follow as they come due; a
// partition whose hold empties is resumed. Holding the head holds nothing
// due earlier only if due times grow along a partition (a retry tier:
// every job waits the tier's delay). A partition revoked or lost in a
// rebalance drops what it held (its next owner reads it from the committed
// offset); what was handed out already is the caller's, to fence
// (OnRevoke). Range is an eager protocol: a rebalance takes every
// partition away and gives most of them straight back; a partition given
// back is read again from its committed offset, like any other.
func (b *Broker) GroupReaderOf(group string, topics []string, due func(kafka.Message) time.Time) *Reader {
	return b.groupReader(group, topics, due, kgo.Balancers(kgo.RangeBalancer()))
}

func (b *Broker) groupReader(group string, topics []string, due func(kafka.Message) time.Time, opts ...kgo.Opt) *Reader {
	r := &Reader{name: strings.Join(topics, ","), group: true, due: due, held: map[topicPartition]*hold{}}
	opts = append(append(b.readerOpts(),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topics...),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.SessionTimeout(10*time.Second),
		kgo.RebalanceTimeout(10*time.Second),
		kgo.HeartbeatInterval(time.Second),
		// A poll holds rebalances off until AllowRebalance, which
		// FetchMessage calls as soon as the polled records are in buf:
		// so the callbacks below see every record of the partitions they
		// take away, and none arrives after them.
		kgo.BlockRebalanceOnPoll(),
		kgo.OnPartitionsRevoked(r.revoked),
		kgo.OnPartitionsLost(r.lost),
	), opts...)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		err = fmt.Errorf("broker: reader of %s for %s: %w", r.name, group, err)
	}
	r.cl, r.err = cl, err
	return r
}

// PartitionReader returns a reader of one partition from an offset, outside
// any group. kafka.FirstOffset and kafka.LastOffset name the ends.
func (b *Broker) PartitionReader(topic string, partition int, offset int64) (*Reader, error) {
	return b.PartitionsReader(topic, map[int]int64{partition: offset})
}

// PartitionsReader returns a reader of several partitions, each from its
// offset, outside any group.
func (b *Broker) PartitionsReader(topic string, from map[int]int64) (*Reader, error) {
	offsets := map[int32]kgo.Offset{}
	for p, offset := range from {
		at := kgo.NewOffset().At(offset)
		switch offset {
		case kafka.FirstOffset:
			at = kgo.NewOffset().AtStart()
		case kafka.LastOffset:
			at = kgo.NewOffset().AtEnd()
		}
		offsets[int32(p)] = at
	}
	cl, err := kgo.NewClient(append(b.readerOpts(),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}))...)
	if err != nil {
		return nil, fmt.Errorf("broker: reader of %s %v: %w", topic, from, err)
	}
	return &Reader{cl: cl, topic: topic, name: topic, held: map[topicPartition]*hold{}}, nil
}

// FetchMessage returns the next message, waiting until one arrives (or a
// held one comes due) or ctx ends.
func (r *Reader) FetchMessage(ctx context.Context) (kafka.Message, error) {
	if r.err != nil {
		return kafka.Message{}, r.err
	}
	for {
		m, wake, ok := r.next(time.Now())
		if ok {
			return m, nil
		}
		if err := r.poll(ctx, wake); err != nil {
			return kafka.Message{}, err
		}
	}
}

// next takes the message to hand out now, if any: a held head that is due
// (the earliest due first), else the next polled record that is due, holding
// on the way those that are not; the preferred topic's first, unless
// another's has waited preferFor (Prefer). Without one it returns when the
// earliest held head comes due (zero for no hold).
func (r *Reader) next(now time.Time) (m kafka.Message, wake time.Time, ok bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var first topicPartition
	var h *hold
	for tp, cand := range r.held {
		if !cand.due.After(now) {
			// Asked again: due may move a head later (a record waiting
			// for room, not only for its time).
			cand.due = r.dueOf(cand.recs[0])
		}
		if !cand.due.After(now) && (h == nil || cand.due.Before(h.due)) {
			first, h = tp, cand
		}
	}
	if r.prefer != "" && len(r.buf) > 0 {
		since := time.Time{}
		if h != nil {
			since = h.due
		}
		if len(r.later) > 0 && (since.IsZero() || r.later[0].at.Before(since)) {
			since = r.later[0].at
		}
		if since.IsZero() || now.Sub(since) < r.preferFor {
			if m, ok := r.fromBuf(now); ok {
				return m, time.Time{}, true
			}
		}
	}
	if h != nil {
		rec := h.recs[0]
		h.recs[0] = nil
		h.recs = h.recs[1:]
		if len(h.recs) == 0 {
			delete(r.held, first)
			if !r.paused[first.partition] || first.topic != r.topic {
				r.cl.ResumeFetchPartitions(map[string][]int32{first.topic: {first.partition}})
			}
		} else {
			h.due = r.dueOf(h.recs[0])
		}
		return message(rec), time.Time{}, true
	}
	for len(r.later) > 0 {
		rec := r.later[0].rec
		r.later[0] = polled{}
		r.later = r.later[1:]
		if m, ok := r.take(rec, now); ok {
			return m, time.Time{}, true
		}
	}
	if m, ok := r.fromBuf(now); ok {
		return m, time.Time{}, true
	}
	for _, h := range r.held {
		if wake.IsZero() || h.due.Before(wake) {
			wake = h.due
		}
	}
	return kafka.Message{}, wake, false
}

// fromBuf takes the next record of buf that is due, holding on the way
// those that are not. r.mu is held.
func (r *Reader) fromBuf(now time.Time) (kafka.Message, bool) {
	for len(r.buf) > 0 {
		rec := r.buf[0]
		r.buf[0] = nil
		r.buf = r.buf[1:]
		if m, ok := r.take(rec, now); ok {
			return m, true
		}
	}
	return kafka.Message{}, false
}

// take returns a polled record's message if it may go now; otherwise it
// holds it: behind its partition's held head, or as the head of a new
// hold, its partition paused. r.mu is held.
func (r *Reader) take(rec *kgo.Record, now time.Time) (kafka.Message, bool) {
	tp := topicPartition{rec.Topic, rec.Partition}
	if h := r.held[tp]; h != nil {
		h.recs = append(h.recs, rec) // behind its partition's head
		return kafka.Message{}, false
	}
	m := message(rec)
	if r.due != nil && !IsControl(m) {
		if due := r.due(m); due.After(now) {
			r.held[tp] = &hold{recs: []*kgo.Record{rec}, due: due}
			r.cl.PauseFetchPartitions(map[string][]int32{tp.topic: {tp.partition}})
			return kafka.Message{}, false
		}
	}
	return m, true
}

// Prefer hands out the records of topic before the other topics' polled
// with them, as long as none of those has waited wait (polled, or come
// due): a stage reading fresh work beside delay topics serves the fresh
// work first when a burst of delayed records comes due at once. Set it
// before the first fetch.
func (r *Reader) Prefer(topic string, wait time.Duration) {
	r.prefer, r.preferFor = topic, wait
}

// dueOf is when a held record may go; a transaction marker goes as soon
// as it is the head.
func (r *Reader) dueOf(rec *kgo.Record) time.Time {
	if rec.Attrs.IsControl() {
		return time.Time{}
	}
	return r.due(message(rec))
}

// poll waits for records until ctx ends or wake (if not zero), and puts
// them in buf. It returns nil when it got records or wake came; an error
// when ctx ended, the client is closed or a fetch failed for good.
func (r *Reader) poll(ctx context.Context, wake time.Time) error {
	pctx := ctx
	if !wake.IsZero() {
		var cancel context.CancelFunc
		pctx, cancel = context.WithDeadline(ctx, wake)
		defer cancel()
	}
	fetches := r.cl.PollRecords(pctx, 1000)
	recs := fetches.Records()
	if len(recs) > 0 {
		now := time.Now()
		r.mu.Lock()
		for _, rec := range recs {
			if r.prefer == "" || rec.Topic == r.prefer {
				r.buf = append(r.buf, rec)
			} else {
				r.later = append(r.later, polled{rec: rec, at: now})
			}
		}
		r.mu.Unlock()
	}
	r.cl.AllowRebalance() // the records are in buf, where a revoke finds them
	if fetches.IsClientClosed() {
		return fmt.Errorf("read %s: %w", r.name, kgo.ErrClientClosed)
	}
	if err := ctx.Err(); err != nil {
		return err // what was polled waits in buf for the next call
	}
	var fatal error
	fetches.EachError(func(t string, p int32, err error) {
		// kgo retries what can be retried by itself; what it hands out
		// is worth stopping for only when no retry can help.
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return
		}
		var ke *kerr.Error
		if errors.As(err, &ke) && !ke.Retriable && fatal == nil {
			fatal = fmt.Errorf("read %s/%d: %w", t, p, err)
		}
	})
	if fatal != nil {
		return fatal
	}
	if len(recs) == 0 && pctx.Err() == nil {
		select { // an error without records: do not spin
		case <-pctx.Done():
		case <-time.After(10 * time.Millisecond):
		}
		if err := ctx.Err(); err != nil {
			return err
		}
	}
	return nil
}

// OnRevoke sets what is called when a rebalance takes partitions away,
// on kgo's goroutine, before they are given up (the group waits for it,
// up to its rebalance timeout): the stage stops using them there and
// commits what it finished of them. Set it before the first fetch.
func (r *Reader) OnRevoke(f func(ctx context.Context, partitions map[string][]int32, lost bool)) {
	r.onRevoke = f
}

// revoked is the callback of a rebalance that takes partitions away: they
// lose what they hold (their next owner reads it from the committed
// offset), then the stage fences them.
func (r *Reader) revoked(ctx context.Context, cl *kgo.Client, gone map[string][]int32) {
	r.mu.Lock()
	r.drop(cl, gone)
	r.mu.Unlock()
	if r.onRevoke != nil {
		r.onRevoke(ctx, gone, false)
	}
}

// lost is the callback of a session lost (the member was fenced or
// kicked): another member may read the partitions already, so nothing of
// them may be committed.
func (r *Reader) lost(ctx context.Context, cl *kgo.Client, gone map[string][]int32) {
	r.mu.Lock()
	r.drop(cl, gone)
	r.mu.Unlock()
	if r.onRevoke != nil {
		r.onRevoke(ctx, gone, true)
	}
}

// drop takes what the partitions gone hold and what waits for them in buf
// (their next owner reads it from the committed offset), and resumes held
// ones, so that they are fetched if they come back. r.mu is held.
func (r *Reader) drop(cl *kgo.Client, gone map[string][]int32) {
	lost := map[topicPartition]bool{}
	resume := map[string][]int32{}
	for t, ps := range gone {
		for _, p := range ps {
			tp := topicPartition{t, p}
			lost[tp] = true
			if _, ok := r.held[tp]; ok {
				delete(r.held, tp)
				resume[t] = append(resume[t], p)
			}
		}
	}
	if len(lost) > 0 {
		r.buf = slices.DeleteFunc(r.buf, func(rec *kgo.Record) bool { return lost[topicPartition{rec.Topic, rec.Partition}] })
		r.later = slices.DeleteFunc(r.later, func(p polled) bool { return lost[topicPartition{p.rec.Topic, p.rec.Partition}] })
	}
	if len(resume) > 0 {
		cl.ResumeFetchPartitions(resume)
	}
}

func message(rec *kgo.Record) kafka.Message {
	m := kafka.Message{
		Topic: rec.Topic, Partition: int(rec.Partition), Offset: rec.Offset,
		Key: rec.Key, Value: rec.Value, Time: rec.Timestamp,
	}
	if rec.Attrs.IsControl() {
		m.Key, m.Value = nil, nil
		m.Headers = []kafka.Header{{Key: controlHeader}}
		return m
	}
	if len(rec.Headers) > 0 {
		m.Headers = make([]kafka.Header, len(rec.Headers))
		for i, h := range rec.Headers {
			m.Headers[i] = kafka.Header{Key: h.Key, Value: h.Value}
		}
	}
	return m
}

// Pause stops fetching a partition: what was fetched already may still come
// out, nothing more will (a bounded stretch read to its end).
func (r *Reader) Pause(partition int) {
	if r.cl != nil {
		r.mu.Lock()
		defer r.mu.Unlock()
		if r.paused == nil {
			r.paused = map[int32]bool{}
		}
		r.paused[int32(partition)] = true
		r.cl.PauseFetchPartitions(map[string][]int32{r.topic: {int32(partition)}})
	}
}

// CommitMessages commits, for each message's partition, the offset after
// it. Only a group reader commits.
func (r *Reader) CommitMessages(ctx context.Context, msgs ...kafka.Message) error {
	if !r.group || r.cl == nil {
		return errors.New("broker: this reader has no group to commit to")
	}
	offsets := map[string]map[int32]kgo.EpochOffset{}
	for _, m := range msgs {
		parts := offsets[m.Topic]
		if parts == nil {
			parts = map[int32]kgo.EpochOffset{}
			offsets[m.Topic] = parts
		}
		if cur, ok := parts[int32(m.Partition)]; !ok || cur.Offset < m.Offset+1 {
			parts[int32(m.Partition)] = kgo.EpochOffset{Epoch: -1, Offset: m.Offset + 1}
		}
	}
	var cerr error
	r.cl.CommitOffsetsSync(ctx, offsets, func(_ *kgo.Client, _ *kmsg.OffsetCommitRequest, resp *kmsg.OffsetCommitResponse, err error) {
		if err != nil {
			cerr = err
			return
		}
		for _, t := range resp.Topics {
			for _, p := range t.Partitions {
				if err := kerr.ErrorForCode(p.ErrorCode); err != nil && cerr == nil {
					cerr = fmt.Errorf("commit %s/%d: %w", t.Topic, p.Partition, err)
				}
			}
		}
	})
	return cerr
}

// Close leaves the group, if any, and closes the connections.
func (r *Reader) Close() error {
	if r.cl != nil {
		r.cl.Close()
	}
	return nil
}
