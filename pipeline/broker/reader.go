package broker

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// Reader reads a topic with franz-go's kgo, as a member of a consumer
// group or from one partition at an offset. kgo rather than kafka-go because
// kafka-go's readers honour no transactions (segmentio/kafka-go#1332): they
// hand out the records of aborted transactions and the transaction markers.
// A Reader reads with read_committed isolation: records of an aborted
// transaction never reach a stage, and a transaction's control records come
// out as messages for which IsControl is true, so that a stage can mark
// their offsets done (and commit past them) without handling them.
//
// It never commits by itself: CommitMessages commits what the stage says is
// done.
type Reader struct {
	cl    *kgo.Client
	topic string
	group bool
	buf   []*kgo.Record
	err   error // the client could not be made: every fetch fails with it
}

// controlHeader marks a control record handed out as a kafka.Message.
const controlHeader = "\x00hookline-control"

// IsControl reports whether m is a transaction marker, not data: a stage
// marks it done and produces nothing for it.
func IsControl(m kafka.Message) bool {
	return len(m.Headers) == 1 && m.Headers[0].Key == controlHeader
}

func (b *Broker) readerOpts(topic string) []kgo.Opt {
	return []kgo.Opt{
		kgo.SeedBrokers(b.addrs...),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords(),
		kgo.FetchMaxWait(100 * time.Millisecond),
		kgo.FetchMaxBytes(16 << 20),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }),
	}
}

// GroupReader returns a consumer-group reader of one topic that starts at
// the earliest offset for a new group and never commits by itself.
func (b *Broker) GroupReader(topic, group string) *Reader {
	opts := append(b.readerOpts(topic),
		kgo.ConsumerGroup(group),
		kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()),
		kgo.DisableAutoCommit(),
		kgo.SessionTimeout(10*time.Second),
		kgo.RebalanceTimeout(10*time.Second),
		kgo.HeartbeatInterval(time.Second),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		err = fmt.Errorf("broker: reader of %s for %s: %w", topic, group, err)
	}
	return &Reader{cl: cl, topic: topic, group: true, err: err}
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
	cl, err := kgo.NewClient(append(b.readerOpts(topic),
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: offsets}))...)
	if err != nil {
		return nil, fmt.Errorf("broker: reader of %s %v: %w", topic, from, err)
	}
	return &Reader{cl: cl, topic: topic}, nil
}

// FetchMessage returns the next message, waiting until one arrives or ctx
// ends.
func (r *Reader) FetchMessage(ctx context.Context) (kafka.Message, error) {
	if r.err != nil {
		return kafka.Message{}, r.err
	}
	for len(r.buf) == 0 {
		fetches := r.cl.PollRecords(ctx, 1000)
		if fetches.IsClientClosed() {
			return kafka.Message{}, fmt.Errorf("read %s: %w", r.topic, kgo.ErrClientClosed)
		}
		if err := ctx.Err(); err != nil {
			return kafka.Message{}, err
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
			return kafka.Message{}, fatal
		}
		r.buf = fetches.Records()
		if len(r.buf) == 0 {
			select { // an error without records: do not spin
			case <-ctx.Done():
				return kafka.Message{}, ctx.Err()
			case <-time.After(10 * time.Millisecond):
			}
		}
	}
	rec := r.buf[0]
	r.buf[0] = nil
	r.buf = r.buf[1:]
	return message(rec), nil
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
