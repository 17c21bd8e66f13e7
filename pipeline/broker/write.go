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
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

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

// Writer produces to Kafka with every write cut into record batches under
// the broker's size limit, and every failure classified once: transient
// failures are retried, a message too large is replaced (Oversize) and never
// retried, other permanent failures are returned.
type Writer struct {
	kw       *kafka.Writer // no topic of its own: each message names one
	topic    string        // given to messages that name none
	max      int
	oversize Oversize
	log      *slog.Logger
	tooLarge *prometheus.CounterVec
}

// Writer returns a producer for one topic, or for messages that name their
// own topic (""): hashed keys (one key, one partition), acks from all
// replicas, record batches capped at the size limit, and a 1 ms batch
// timeout so that latency stays low while one Write of many messages still
// goes out as few batches.
func (b *Broker) Writer(topic string, oversize Oversize) *Writer {
	return &Writer{
		kw: &kafka.Writer{
			Addr:         kafka.TCP(b.addrs...),
			Balancer:     &kafka.Hash{},
			RequiredAcks: kafka.RequireAll,
			BatchTimeout: time.Millisecond,
			// kafka-go gives every batch a slice of BatchSize messages
			// up front (~180 B each): at 1,000 that was a quarter of all
			// the bytes serve allocated under load (BenchmarkWriterWrite).
			BatchSize:   100,
			BatchBytes:  int64(b.maxBytes),
			MaxAttempts: 3,
			// LZ4 batches: the broker stores and serves a third of the
			// bytes (records are JSON), which took 4% off serve's CPU
			// with the embedded broker (docs/BENCHMARKS.md) and saves a
			// real Kafka's disk and network; every Kafka client reads
			// it. Sizes stay checked uncompressed (BatchBytes, Oversize),
			// so no batch passes the broker's limit.
			Compression: kafka.Lz4,
			Transport:   b.transport,
		},
		topic: topic, max: b.maxBytes, oversize: oversize, log: b.log, tooLarge: b.tooLarge,
	}
}

// Fits reports whether m is under the size limit.
func (w *Writer) Fits(m kafka.Message) bool { return Size(m) <= w.max }

// Close flushes and closes the writer.
func (w *Writer) Close() error { return w.kw.Close() }

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

// Write produces msgs and returns once the broker acknowledged all of
// them, or the replacements of those too large. Transient failures (a
// broker restarting, a leader moving, a lost connection) are retried with
// a growing backoff, 50 ms doubling to 5 s, until ctx ends: output is never
// dropped, only left unwritten at shutdown, and then the input that made it
// is not committed. A permanent failure returns at once, wrapping
// ErrPermanent.
func (w *Writer) Write(ctx context.Context, msgs []kafka.Message) error {
	msgs = w.fit(w.named(msgs))
	backoff := 50 * time.Millisecond
	for len(msgs) > 0 {
		err := w.kw.WriteMessages(ctx, msgs...)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return fmt.Errorf("write %s: %w", w.name(), ctx.Err())
		}
		var retry []kafka.Message
		retry, err = w.classify(msgs, err)
		if err != nil {
			return err
		}
		if len(retry) < len(msgs) {
			backoff = 50 * time.Millisecond // something went through or was replaced: progress
		}
		msgs = retry
		if len(msgs) == 0 {
			return nil
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

// classify sorts the messages of a failed write: those to send again, and
// those refused as too large, which are replaced (and so also sent again).
// A permanent error ends the write.
func (w *Writer) classify(msgs []kafka.Message, err error) ([]kafka.Message, error) {
	var tooLarge kafka.MessageTooLargeError
	if errors.As(err, &tooLarge) { // over kafka-go's own cap: fit missed it
		return append(w.replace(tooLarge.Message), tooLarge.Remaining...), nil
	}
	var werrs kafka.WriteErrors
	if !errors.As(err, &werrs) || len(werrs) != len(msgs) {
		if !Retryable(err) {
			return nil, fmt.Errorf("write %s: %w: %w", w.name(), ErrPermanent, err)
		}
		w.log.Warn("write failed, retrying", "topic", w.name(), "messages", len(msgs), "err", err)
		return msgs, nil
	}
	var retry []kafka.Message
	var first error
	failed := 0
	for i, e := range werrs {
		switch {
		case e == nil:
		case errors.Is(e, kafka.MessageSizeTooLarge) || errors.Is(e, kafka.RecordListTooLarge):
			retry = append(retry, w.replace(msgs[i])...)
		case Retryable(e):
			retry = append(retry, msgs[i])
			failed++
			first = cmp.Or(first, e)
		default:
			return nil, fmt.Errorf("write %s: %w: %w", w.name(), ErrPermanent, e)
		}
	}
	if failed > 0 {
		// One line per write, not one per message: a batch of a thousand
		// refused together says the same thing a thousand times.
		w.log.Warn("write failed, retrying", "topic", w.name(), "failed", failed, "of", len(msgs), "err", first)
	}
	return retry, nil
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
func Retryable(err error) bool {
	var kerr kafka.Error
	if errors.As(err, &kerr) {
		return kerr.Temporary() || kerr == kafka.NotEnoughReplicasAfterAppend || kerr == kafka.KafkaStorageError
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
	// transient: a write is retried only while its context lasts.
	return !errors.Is(err, ErrPermanent)
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
