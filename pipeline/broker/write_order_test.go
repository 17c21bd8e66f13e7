package broker

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/hookline/hookline/schemas"
)

// TestWriterKeepsAPartitionsOrderAcrossRetries: a stream of Writes to one
// partition, one produce request in the middle of it failing with a
// retriable error; the partition holds exactly what was written, in write
// order, nothing twice. Hookline's per-webhook order on hookline.deliveries
// and its retry topics' order rest on this.
func TestWriterKeepsAPartitionsOrderAcrossRetries(t *testing.T) {
	const (
		writes   = 20
		perWrite = 250 // more than one batch of the old writer (100 messages)
		failAt   = 10  // the produce request that fails: mid-stream
	)
	for _, tt := range []struct {
		name string
		// fail answers produce request n of the stream (1-based), or
		// hands it on to the broker (handled false); it counts the
		// requests it failed in failed.
		fail func(c *kfake.Cluster, n int64, req kmsg.Request, failed *atomic.Int64) (kmsg.Response, error, bool)
	}{
		{"a produce refused with NOT_LEADER_FOR_PARTITION three times running", func(_ *kfake.Cluster, n int64, req kmsg.Request, failed *atomic.Int64) (kmsg.Response, error, bool) {
			if n < failAt || n >= failAt+3 {
				return nil, nil, false
			}
			failed.Add(1)
			return produceError(req, kerr.NotLeaderForPartition), nil, true
		}},
		{"a produce appended by the broker and answered REQUEST_TIMED_OUT", func(c *kfake.Cluster, n int64, _ kmsg.Request, failed *atomic.Int64) (kmsg.Response, error, bool) {
			if n == failAt {
				// kfake appends the batch, then answers the timeout, as
				// a broker whose replicas were slow does.
				c.Fault(kfake.Fault{Keys: []kmsg.Key{kmsg.Produce}, Err: kerr.RequestTimedOut, Count: 1})
				failed.Add(1)
			}
			return nil, nil, false
		}},
		{"a produce whose connection drops before the broker reads it", func(_ *kfake.Cluster, n int64, _ kmsg.Request, failed *atomic.Int64) (kmsg.Response, error, bool) {
			if n != failAt {
				return nil, nil, false
			}
			failed.Add(1)
			return nil, errors.New("connection dropped"), true
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			b := startWith(t, 1)
			var produced, failed atomic.Int64
			b.cluster.ControlKey(int16(kmsg.Produce), func(req kmsg.Request) (kmsg.Response, error, bool) {
				b.cluster.KeepControl()
				return tt.fail(b.cluster, produced.Add(1), req, &failed)
			})
			w := b.Writer(schemas.TopicDeliveries, nil)
			defer w.Close()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			var want []string
			for i := range writes {
				msgs := make([]kafka.Message, perWrite)
				for j := range msgs {
					v := fmt.Sprintf("write %02d message %03d", i, j)
					msgs[j] = kafka.Message{Key: []byte("webhook-1"), Value: []byte(v)}
					want = append(want, v)
				}
				if err := w.Write(ctx, msgs); err != nil {
					t.Fatalf("write %d: %v", i, err)
				}
			}
			if n := produced.Load(); failed.Load() == 0 || n <= failAt+3 {
				t.Fatalf("%d produce requests, %d failed: no failure in the middle of the stream", n, failed.Load())
			}
			got := readPartition(t, b, schemas.TopicDeliveries, 0)
			if !slices.Equal(got, want) {
				t.Fatalf("partition holds %d records, %d written; first difference: %s",
					len(got), len(want), firstDifference(got, want))
			}
		})
	}
}

// produceError answers every partition of a produce request with err.
func produceError(req kmsg.Request, err *kerr.Error) kmsg.Response {
	pr := req.(*kmsg.ProduceRequest)
	resp := pr.ResponseKind().(*kmsg.ProduceResponse)
	for _, t := range pr.Topics {
		rt := kmsg.NewProduceResponseTopic()
		rt.Topic, rt.TopicID = t.Topic, t.TopicID
		for _, p := range t.Partitions {
			rp := kmsg.NewProduceResponseTopicPartition()
			rp.Partition, rp.ErrorCode = p.Partition, err.Code
			rt.Partitions = append(rt.Partitions, rp)
		}
		resp.Topics = append(resp.Topics, rt)
	}
	return resp
}

// readPartition reads a partition from its start to its end offset, with
// kgo: every record it holds, in offset order.
func readPartition(t *testing.T, b *Broker, topic string, partition int32) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	ends, err := b.EndOffsets(ctx, topic)
	if err != nil {
		t.Fatal(err)
	}
	end := ends[int(partition)]
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs()...), kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{
		topic: {partition: kgo.NewOffset().AtStart()}}))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []string
	for int64(len(out)) < end {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("read %s/%d: %d of %d: %v", topic, partition, len(out), end, err)
		}
		fs.EachRecord(func(r *kgo.Record) { out = append(out, string(r.Value)) })
	}
	return out
}

// firstDifference says where two sequences part.
func firstDifference(got, want []string) string {
	for i := range min(len(got), len(want)) {
		if got[i] != want[i] {
			return fmt.Sprintf("at %d: %q, want %q", i, got[i], want[i])
		}
	}
	if len(got) > len(want) {
		return fmt.Sprintf("at %d: %q, past the end", len(want), got[len(want)])
	}
	return fmt.Sprintf("at %d: nothing, want %q", len(got), want[len(got)])
}
