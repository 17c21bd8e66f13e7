package broker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/schemas"
)

// DefaultMaxMessageBytes is the size limit used when the broker does not
// say its own: under Kafka's and kfake's default of 1,048,588 bytes for a
// record batch, with room for the batch's own header.
const DefaultMaxMessageBytes = 1_000_000

// Oversize is what a writer produces instead of a message that is over the
// size limit, or that the broker refused as too large: a smaller record
// (the attempt without its bodies) or a dead letter. What it returns must
// fit; what still does not is dropped and logged. The stages give their own
// (pipeline/records); a nil Oversize writes TooLargeDeadLetter.
type Oversize func(m kafka.Message, limit int) []kafka.Message

// Writer produces to Kafka with franz-go's kgo as an idempotent producer:
// a partition's records keep their write order across retries, and a retry
// never appends a record twice. Every write is cut into record batches
// under the broker's size limit, and every failure is classified once:
// transient failures are retried, a message too large is replaced
// (Oversize) and never retried, other permanent failures are returned.
//
// kgo rather than kafka-go's Writer because kafka-go cannot keep a
// partition's order across retries: it splits a partition's messages into
// batches that fail and are retried independently, so a batch retried
// after a later one succeeded lands behind it, and its retries are not
// idempotent, so a batch the broker appended but answered late is appended
// again. kgo retries a partition's batches in order, under one producer id
// and sequence numbers the broker deduplicates, and fails a record only
// with every record buffered behind it in its partition.
//
// Each Writer has its own kgo client, made by the first Write (a writer
// made and never used costs nothing) and released by Close: kgo's limits
// and failures are per client (its buffered-records cap, its producer id,
// a canceled head-of-line record failing its partition's queue), so one
// writer's backlog or shutdown never holds or fails another's records, and
// a handful of writers per process is a handful of connections.
type Writer struct {
	opts     []kgo.Opt // the client's, made on the first Write
	topic    string    // given to messages that name none
	max      int
	oversize Oversize
	log      *slog.Logger
	tooLarge *prometheus.CounterVec

	mu     sync.Mutex // guards cl and closed
	cl     *kgo.Client
	closed bool
}

// batchFraming is room for what kgo counts in a record batch of one
// message and Size does not: the batch header (65 bytes as kgo counts it)
// and the record's varints (lengths and deltas) come to 12 bytes more than
// Size's 64 for a 1 MiB message, and under 20 for any message under the
// 100 MiB a limit may be. Record batches are capped at the limit plus
// this, so that kgo never refuses on its own a message that Fits (kgo
// fails such a record alone, and the records behind it would go out
// before its replacement); that is still under the broker's limit, the
// writer's plus 1 KiB when it was asked for.
const batchFraming = 64

// Writer returns a producer for one topic, or for messages that name their
// own topic (""). Its records go to the partition kafka-go's Hash balancer
// picks (hashPartitioner), acknowledged by all in-sync replicas.
func (b *Broker) Writer(topic string, oversize Oversize) *Writer {
	batchMax := int32(b.maxBytes + batchFraming)
	opts := []kgo.Opt{
		kgo.SeedBrokers(b.addrs...),
		kgo.RecordPartitioner(hashPartitioner{}),
		// Idempotent (kgo's default, kept): the broker drops a batch it
		// has already appended when a retry repeats it, and kgo keeps up
		// to five produce requests in flight to a broker in order.
		kgo.RequiredAcks(kgo.AllISRAcks()),
		// kgo retries retriable produce errors itself, in order, with no
		// cap on retries: a record is failed back to Write only when
		// retrying cannot help (its topic stays unknown, the broker
		// refuses it for good), or when its context ends and failing it
		// cannot make a duplicate (it was never sent, or the broker
		// answered). The Write's context is the only bound.
		kgo.RetryBackoffFn(retryBackoff),
		// A partition whose leader moved waits for fresh metadata; kgo's
		// default of 5 s between refreshes held a partition's writes 5 s
		// for each NOT_LEADER_FOR_PARTITION answer.
		kgo.MetadataMinAge(250 * time.Millisecond),
		// One batch per partition per request, capped as batchFraming
		// says, its size counted uncompressed like Size and Oversize.
		kgo.ProducerBatchMaxBytes(batchMax),
		// LZ4 batches: the broker stores and serves a third of the bytes
		// (records are JSON), which took 4% off serve's CPU with the
		// embedded broker (docs/BENCHMARKS.md) and saves a real Kafka's
		// disk and network; every Kafka client reads it. Snappy, zstd and
		// none cost more CPU in the burst (docs/BENCHMARKS.md, issue 23).
		// Written as lz4Codec says: frames cheaper to read.
		kgo.ProducerBatchCompression(kgo.Lz4Compression()),
		kgo.WithCompressor(codec),
		// Concurrent Writes wait up to 1 ms to share requests; a Write
		// itself does not wait it (see produce).
		kgo.ProducerLinger(time.Millisecond),
		kgo.WithLogger(kgoLogger{log: b.log.With("writer", cmp.Or(topic, "(per message)"))}),
	}
	if batchMax > 100<<20 { // kgo's default cap on one request, under which a batch must fit
		opts = append(opts, kgo.BrokerMaxWriteBytes(batchMax+1<<20))
	}
	return &Writer{opts: opts, topic: topic, max: b.maxBytes, oversize: oversize, log: b.log, tooLarge: b.tooLarge}
}

// retryBackoff is the wait before try n (from 1) of anything retried: 50
// ms doubling to 5 s.
func retryBackoff(n int) time.Duration {
	return min(50*time.Millisecond<<min(max(n, 1)-1, 7), 5*time.Second)
}

// client returns the writer's kgo client, made on first use.
func (w *Writer) client() (*kgo.Client, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return nil, fmt.Errorf("write %s: %w: the writer is closed", w.name(), ErrPermanent)
	}
	if w.cl == nil {
		cl, err := kgo.NewClient(w.opts...)
		if err != nil {
			return nil, fmt.Errorf("write %s: %w: %w", w.name(), ErrPermanent, err)
		}
		w.cl = cl
	}
	return w.cl, nil
}

// Fits reports whether m is under the size limit.
func (w *Writer) Fits(m kafka.Message) bool { return Size(m) <= w.max }

// Close releases the writer's connections and goroutines. A Write returns
// only once its messages are acknowledged or it has failed, so nothing
// acknowledged is pending; the records of a Write that returned at its
// context's end and are still unsent are failed, as that Write was.
func (w *Writer) Close() error {
	w.mu.Lock()
	cl := w.cl
	w.cl, w.closed = nil, true
	w.mu.Unlock()
	if cl != nil {
		cl.Close()
	}
	return nil
}

// Size is the bytes a message takes in a record batch, counted the way the
// broker's limit counts them, with a little to spare.
func Size(m kafka.Message) int {
	n := 64 + len(m.Key) + len(m.Value)
	for _, h := range m.Headers {
		n += 8 + len(h.Key) + len(h.Value)
	}
	return n
}

// ErrPermanent marks a write that retrying cannot make succeed (an unknown
// topic, a denied authorisation): the broker or the configuration must
// change.
var ErrPermanent = errors.New("permanent write error")

// errUnsent marks a message an attempt did not send (see attempt).
var errUnsent = errors.New("not sent yet")

// Write produces msgs and returns once the broker acknowledged all of
// them, or the replacements of those too large. A partition's messages are
// appended in their order in msgs, each once. Transient failures (a broker
// restarting, a leader moving, a lost connection) are retried with a
// growing backoff, 50 ms doubling to 5 s, until ctx ends: output is never
// dropped, only left unwritten at shutdown, and then the input that made it
// is not committed. A permanent failure returns at once, wrapping
// ErrPermanent.
func (w *Writer) Write(ctx context.Context, msgs []kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	cl, err := w.client()
	if err != nil {
		return err
	}
	msgs = w.fit(w.named(msgs))
	backoff := 50 * time.Millisecond
	alone := 0 // how many of msgs go one at a time (see classify)
	for len(msgs) > 0 {
		errs, err := w.attempt(ctx, cl, msgs, alone)
		if err != nil {
			return fmt.Errorf("write %s: %w", w.name(), err)
		}
		if errs == nil {
			return nil
		}
		var retry []kafka.Message
		var failed int
		retry, alone, failed, err = w.classify(msgs, errs, alone)
		if err != nil {
			return err
		}
		if len(retry) < len(msgs) {
			backoff = 50 * time.Millisecond // something went through or was replaced: progress
		}
		msgs = retry
		if failed == 0 || len(msgs) == 0 {
			continue // nothing failed that waiting would help
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("write %s: %w", w.name(), ctx.Err())
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
	return nil
}

// attempt sends msgs once and returns each one's failure, or nil errors
// when the broker acknowledged them all. The first alone messages are sent
// one at a time, each once the one before is acknowledged, and the attempt
// stops at the first of them that fails: the rest are errUnsent.
func (w *Writer) attempt(ctx context.Context, cl *kgo.Client, msgs []kafka.Message, alone int) ([]error, error) {
	if alone == 0 {
		return w.produce(ctx, cl, msgs)
	}
	errs := make([]error, len(msgs))
	for i := range msgs {
		if i >= alone {
			errs[i] = errUnsent
			continue
		}
		one, err := w.produce(ctx, cl, msgs[i:i+1])
		if err != nil {
			return nil, err
		}
		if one != nil {
			errs[i] = one[0]
			for j := i + 1; j < len(msgs); j++ {
				errs[j] = errUnsent
			}
			break
		}
	}
	return errs, nil
}

// produce sends msgs as kgo records and returns each one's failure, nil
// when all were acknowledged, or ctx's error when ctx ended first.
func (w *Writer) produce(ctx context.Context, cl *kgo.Client, msgs []kafka.Message) ([]error, error) {
	recs, err := records(msgs)
	if err != nil {
		return nil, err
	}
	// ProduceSync stops the linger of the partitions it buffered into once
	// every record is in: a Write goes out at once, all its partitions in
	// one produce request per broker. It waits for every record's outcome,
	// and the idempotent producer gives up a record it sent only once the
	// broker answers, so it runs on a goroutine of its own: Write returns
	// when ctx ends, the goroutine when kgo answers or the client closes.
	done := make(chan kgo.ProduceResults, 1)
	go func() { done <- cl.ProduceSync(ctx, recs...) }()
	// kgo retries silently: a write it holds says so every slowWrite.
	slow := time.NewTicker(slowWrite)
	defer slow.Stop()
	for waited := slowWrite; ; waited += slowWrite {
		select {
		case results := <-done:
			if results.FirstErr() == nil {
				return nil, nil
			}
			if err := ctx.Err(); err != nil {
				return nil, err
			}
			return failures(recs, results), nil
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-slow.C:
			w.log.Warn("write not acknowledged yet, retrying", "topic", w.name(), "messages", len(msgs), "waited", waited)
		}
	}
}

// records converts messages to kgo records, one allocation for all their
// headers.
func records(msgs []kafka.Message) ([]*kgo.Record, error) {
	recs := make([]kgo.Record, len(msgs))
	ptrs := make([]*kgo.Record, len(msgs))
	n := 0
	for i := range msgs {
		n += len(msgs[i].Headers)
	}
	headers := make([]kgo.RecordHeader, 0, n)
	for i := range msgs {
		m := &msgs[i]
		if m.Topic == "" {
			return nil, fmt.Errorf("%w: a message names no topic and the writer has none", ErrPermanent)
		}
		from := len(headers)
		for _, h := range m.Headers {
			headers = append(headers, kgo.RecordHeader{Key: h.Key, Value: h.Value})
		}
		recs[i] = kgo.Record{Topic: m.Topic, Key: m.Key, Value: m.Value, Timestamp: m.Time,
			Headers: headers[from:len(headers):len(headers)]}
		ptrs[i] = &recs[i]
	}
	return ptrs, nil
}

// failures puts kgo's results, in the order it finished them, back in the
// order of recs.
func failures(recs []*kgo.Record, results kgo.ProduceResults) []error {
	at := make(map[*kgo.Record]int, len(recs))
	for i, r := range recs {
		at[r] = i
	}
	errs := make([]error, len(recs))
	for _, r := range results {
		errs[at[r.Record]] = r.Err
	}
	return errs
}

// named gives the writer's topic to the messages that name none, on a copy.
func (w *Writer) named(msgs []kafka.Message) []kafka.Message {
	for i := range msgs {
		if msgs[i].Topic == "" {
			out := slices.Clone(msgs)
			for j := i; j < len(out); j++ {
				if out[j].Topic == "" {
					out[j].Topic = w.topic
				}
			}
			return out
		}
	}
	return msgs
}

// fit replaces the messages over the limit before anything is sent.
func (w *Writer) fit(msgs []kafka.Message) []kafka.Message {
	for i := range msgs {
		if !w.Fits(msgs[i]) {
			out := append([]kafka.Message(nil), msgs[:i]...)
			for _, m := range msgs[i:] {
				if w.Fits(m) {
					out = append(out, m)
				} else {
					out = append(out, w.replace(m)...)
				}
			}
			return out
		}
	}
	return msgs
}

// replace gives what goes out instead of a message that is too large.
func (w *Writer) replace(m kafka.Message) []kafka.Message {
	w.tooLarge.WithLabelValues(m.Topic).Inc()
	var out []kafka.Message
	if w.oversize != nil {
		out = w.oversize(m, w.max)
	} else {
		out = []kafka.Message{TooLargeDeadLetter(m, w.max)}
	}
	kept := out[:0]
	for _, r := range w.named(out) {
		if w.Fits(r) {
			kept = append(kept, r)
			continue
		}
		w.log.Error("dropping a message that is too large even after it was replaced",
			"topic", r.Topic, "key", string(r.Key), "bytes", Size(r), "limit", w.max)
	}
	w.log.Warn("message over the size limit replaced", "topic", m.Topic, "key", string(m.Key),
		"bytes", Size(m), "limit", w.max, "replacements", len(kept))
	return kept
}

// classify sorts the messages of an attempt that were not acknowledged:
// those to send again, in their order, and those refused as too large,
// which are replaced in place. It returns how many of them lead the next
// attempt one at a time, how many failed in a way waiting may help, and
// the error that ends the write if one is permanent.
//
// The broker refuses a record batch as too large, not a record, and kgo
// fails the refused batch with every record queued behind it in its
// partition, all with that error. A message refused alone is the one too
// large and is replaced; when several were refused together they go one
// at a time, up to the last of them, to learn which. (A batch can also
// hold another Write's records: a message refused alone can have been
// refused for their bytes too.)
func (w *Writer) classify(msgs []kafka.Message, errs []error, alone int) (retry []kafka.Message, nextAlone, failed int, err error) {
	refused := 0
	for _, e := range errs {
		if tooLarge(e) {
			refused++
		}
	}
	var first error
	for i, e := range errs {
		one := i < alone
		switch {
		case e == nil:
			continue
		case errors.Is(e, errUnsent):
		case tooLarge(e) && refused == 1:
			retry = append(retry, w.replace(msgs[i])...)
			continue
		case tooLarge(e):
			one = true
		case Retryable(e):
			failed++
			first = cmp.Or(first, e)
		default:
			return nil, 0, 0, fmt.Errorf("write %s: %w: %w", w.name(), ErrPermanent, e)
		}
		retry = append(retry, msgs[i])
		if one {
			nextAlone = len(retry)
		}
	}
	if failed > 0 {
		// One line per write, not one per message: a batch of a thousand
		// refused together says the same thing a thousand times.
		w.log.Warn("write failed, retrying", "topic", w.name(), "failed", failed, "of", len(msgs), "err", first)
	}
	return retry, nextAlone, failed, nil
}

// tooLarge reports a refusal for size: kgo's, of a record that cannot fit
// a batch alone, or the broker's, of a batch.
func tooLarge(err error) bool {
	return errors.Is(err, kerr.MessageTooLarge) || errors.Is(err, kerr.RecordListTooLarge) ||
		errors.Is(err, kafka.MessageSizeTooLarge) || errors.Is(err, kafka.RecordListTooLarge)
}

func (w *Writer) name() string {
	if w.topic == "" {
		return "(per message)"
	}
	return w.topic
}

// Retryable reports whether a failed produce may succeed if tried again:
// the broker's retriable error codes, timeouts and lost connections. The one
// place that decides it.
//
// Two codes the broker calls retriable are not: an unknown topic or
// partition, which kgo returns only after it looked the topic up in fresh
// metadata several times (UnknownTopicRetries, 4) and Hookline creates its
// topics at start; and CORRUPT_MESSAGE, which kgo does not retry either (a
// null key on a compacted topic is one).
func Retryable(err error) bool {
	if errors.Is(err, ErrPermanent) || errors.Is(err, kgo.ErrClientClosed) ||
		errors.Is(err, kerr.UnknownTopicOrPartition) || errors.Is(err, kerr.UnknownTopicID) ||
		errors.Is(err, kerr.CorruptMessage) || errors.Is(err, kafka.UnknownTopicOrPartition) {
		return false
	}
	var ke *kerr.Error
	if errors.As(err, &ke) {
		return ke.Retriable
	}
	var kafkaErr kafka.Error // kafka-go's, from the admin client
	if errors.As(err, &kafkaErr) {
		return kafkaErr.Temporary() || kafkaErr == kafka.NotEnoughReplicasAfterAppend || kafkaErr == kafka.KafkaStorageError
	}
	var nerr net.Error
	switch {
	case errors.As(err, &nerr),
		errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.ErrClosedPipe),
		errors.Is(err, syscall.ECONNREFUSED), errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE),
		errors.Is(err, context.DeadlineExceeded):
		return true
	}
	// Unknown errors from the client (dial, metadata) are treated as
	// transient, and so is another Write's context ending (kgo fails a
	// partition's queued records with the error of the one at its head): a
	// write is retried only while its own context lasts.
	return true
}

// slowWrite is how often a write that kgo holds (retrying, or waiting for
// a broker) logs that it is still waiting.
const slowWrite = 5 * time.Second

// kgoLogger passes kgo's errors to the writer's log. Not its warnings:
// with the broker down they are a few lines a second per client (each
// dial refused), which slowWrite says once.
type kgoLogger struct{ log *slog.Logger }

func (kgoLogger) Level() kgo.LogLevel { return kgo.LogLevelError }

func (l kgoLogger) Log(_ kgo.LogLevel, msg string, keyvals ...any) {
	l.log.Error("kafka client: "+msg, keyvals...)
}

// Dead-letter headers: a dead letter keeps the original bytes as its value,
// exactly, and says what it was and why in these headers.
const (
	HeaderReason    = "hookline-reason"
	HeaderTopic     = "hookline-topic"
	HeaderPartition = "hookline-partition"
	HeaderOffset    = "hookline-offset"
	HeaderAt        = "hookline-at"
	HeaderBytes     = "hookline-bytes"
)

// ReasonTooLarge is the dead-letter reason of an output over the limit.
const ReasonTooLarge = "too_large"

// DeadLetter builds the hookline.dead message for an input that could not be
// processed: the original key and value exactly, and where it came from and
// why in headers. An original too large to carry with its headers keeps
// only the headers (HeaderBytes says its size).
func DeadLetter(msg kafka.Message, reason string) kafka.Message {
	dl := kafka.Message{Topic: schemas.TopicDead, Key: msg.Key, Value: msg.Value, Headers: []kafka.Header{
		{Key: HeaderReason, Value: []byte(reason)},
		{Key: HeaderTopic, Value: []byte(msg.Topic)},
		{Key: HeaderPartition, Value: strconv.AppendInt(nil, int64(msg.Partition), 10)},
		{Key: HeaderOffset, Value: strconv.AppendInt(nil, msg.Offset, 10)},
		{Key: HeaderAt, Value: msg.Time.UTC().AppendFormat(nil, time.RFC3339Nano)},
		{Key: HeaderBytes, Value: strconv.AppendInt(nil, int64(len(msg.Value)), 10)},
	}}
	return dl
}

// TooLargeDeadLetter is the dead letter of an output over the limit limit:
// its key, intended topic and size, without its value.
func TooLargeDeadLetter(m kafka.Message, limit int) kafka.Message {
	return kafka.Message{Topic: schemas.TopicDead, Key: m.Key, Headers: []kafka.Header{
		{Key: HeaderReason, Value: fmt.Appendf(nil, "%s: %d bytes, over the limit of %d", ReasonTooLarge, Size(m), limit)},
		{Key: HeaderTopic, Value: []byte(m.Topic)},
		{Key: HeaderBytes, Value: strconv.AppendInt(nil, int64(len(m.Value)), 10)},
		{Key: HeaderAt, Value: time.Now().UTC().AppendFormat(nil, time.RFC3339Nano)},
	}}
}

// Header returns the value of a message's header, "" when it has none.
func Header(m kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}
