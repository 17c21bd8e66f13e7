package broker

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/schemas"
)

func startLimited(t *testing.T, limit int) *Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := Start(ctx, Config{DataDir: t.TempDir(), Partitions: 1, MaxMessageBytes: limit}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

func readAll(t *testing.T, b *Broker, topic string, n int) []kafka.Message {
	t.Helper()
	r, err := b.PartitionReader(topic, 0, kafka.FirstOffset)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []kafka.Message
	for len(out) < n {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		m, err := r.FetchMessage(ctx)
		cancel()
		if err != nil {
			t.Fatalf("read %s: %d of %d: %v", topic, len(out), n, err)
		}
		out = append(out, m)
	}
	return out
}

func TestStartAsksTheBrokerForItsLimit(t *testing.T) {
	b := start(t, t.TempDir())
	defer b.Close()
	// kfake's default max.message.bytes, 1,048,588, less room for a batch
	// header.
	if got := b.MaxMessageBytes(); got != 1048588-1024 {
		t.Fatalf("limit %d, want the broker's 1048588 less 1024", got)
	}
}

// TestWriterReplacesWhatIsOverTheLimit: a message over the limit is not
// sent and not retried; its replacement goes out, and so do the messages
// around it.
func TestWriterReplacesWhatIsOverTheLimit(t *testing.T) {
	b := startLimited(t, 8192)
	w := b.Writer(schemas.TopicEvents, nil)
	defer w.Close()
	big := kafka.Message{Key: []byte("big"), Value: make([]byte, 20000)}
	msgs := []kafka.Message{{Key: []byte("a"), Value: []byte("1")}, big, {Key: []byte("b"), Value: []byte("2")}}
	if err := w.Write(context.Background(), msgs); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, b, schemas.TopicEvents, 2)
	if string(got[0].Key) != "a" || string(got[1].Key) != "b" {
		t.Fatalf("events %q %q; want a and b", got[0].Key, got[1].Key)
	}
	if n := testutil.ToFloat64(b.tooLarge.WithLabelValues(schemas.TopicEvents)); n != 1 {
		t.Errorf("hookline_too_large_total{topic=events} = %v, want 1", n)
	}
	dead := readAll(t, b, schemas.TopicDead, 1)[0]
	if string(dead.Key) != "big" || !strings.HasPrefix(Header(dead, HeaderReason), ReasonTooLarge) ||
		Header(dead, HeaderTopic) != schemas.TopicEvents || Header(dead, HeaderBytes) != "20000" {
		t.Fatalf("dead letter %q %+v; want the big one's key, too_large, its topic and size", dead.Key, dead.Headers)
	}
}

// TestWriterReplacesWhatTheBrokerRefuses: a topic whose own limit is under
// the writer's: the broker refuses the message as too large, and the
// writer replaces it at once instead of retrying it.
func TestWriterReplacesWhatTheBrokerRefuses(t *testing.T) {
	b := startLimited(t, 100000)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := b.client.AlterConfigs(ctx, &kafka.AlterConfigsRequest{Resources: []kafka.AlterConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: schemas.TopicEvents,
		Configs: []kafka.AlterConfigRequestConfig{{Name: "max.message.bytes", Value: "10000"}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	var replaced []kafka.Message
	w := b.Writer(schemas.TopicEvents, func(m kafka.Message, limit int) []kafka.Message {
		replaced = append(replaced, m)
		return []kafka.Message{TooLargeDeadLetter(m, limit)}
	})
	defer w.Close()
	// Random bytes: the writer compresses, and zeros would pass.
	value := make([]byte, 50000)
	rand.Read(value)
	start := time.Now()
	if err := w.Write(ctx, []kafka.Message{{Key: []byte("k"), Value: value}}); err != nil {
		t.Fatal(err)
	}
	if len(replaced) != 1 || time.Since(start) > 5*time.Second {
		t.Fatalf("replaced %d in %v; want the refused message replaced once, without retrying it", len(replaced), time.Since(start))
	}
	if dead := readAll(t, b, schemas.TopicDead, 1)[0]; string(dead.Key) != "k" {
		t.Fatalf("dead letter for %q", dead.Key)
	}
}

func TestDeadLetterKeepsTheOriginalBytes(t *testing.T) {
	orig := kafka.Message{Topic: schemas.TopicEvents, Partition: 3, Offset: 42, Key: []byte("k"),
		Value: []byte("<b>\xff\xfe not json"), Time: time.Unix(1700000000, 0)}
	dl := DeadLetter(orig, "not a JSON object")
	if string(dl.Value) != string(orig.Value) || string(dl.Key) != "k" || dl.Topic != schemas.TopicDead {
		t.Fatalf("dead letter %q → %q; want the original bytes", orig.Value, dl.Value)
	}
	for h, want := range map[string]string{HeaderReason: "not a JSON object", HeaderTopic: schemas.TopicEvents,
		HeaderPartition: "3", HeaderOffset: "42", HeaderBytes: fmt.Sprint(len(orig.Value))} {
		if got := Header(dl, h); got != want {
			t.Errorf("header %s = %q, want %q", h, got, want)
		}
	}
}

func TestRetryable(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{kafka.LeaderNotAvailable, true},
		{kafka.NotEnoughReplicas, true},
		{kafka.RequestTimedOut, true},
		{io.ErrUnexpectedEOF, true},
		{fmt.Errorf("dial: %w", context.DeadlineExceeded), true},
		{kafka.MessageSizeTooLarge, false},
		{kafka.TopicAuthorizationFailed, false},
		{kafka.InvalidTopic, false},
		{fmt.Errorf("x: %w", ErrPermanent), false},
	} {
		if got := Retryable(tt.err); got != tt.want {
			t.Errorf("Retryable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}

// TestWriterCompresses: what a writer produces is stored as LZ4 batches.
func TestWriterCompresses(t *testing.T) {
	b := start(t, t.TempDir())
	defer b.Close()
	w := b.Writer(schemas.TopicEvents, nil)
	defer w.Close()
	value := []byte(strings.Repeat(`{"ticket":"the printer smells of smoke"}`, 50))
	if err := w.Write(context.Background(), []kafka.Message{{Key: []byte("k"), Value: value}}); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs()...), kgo.ConsumeTopics(schemas.TopicEvents),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	fs := cl.PollFetches(ctx)
	if err := fs.Err0(); err != nil {
		t.Fatal(err)
	}
	recs := fs.Records()
	if len(recs) != 1 || string(recs[0].Value) != string(value) {
		t.Fatalf("read %d records", len(recs))
	}
	if c := recs[0].Attrs.CompressionType(); c != 3 {
		t.Fatalf("compression type %d, want 3 (lz4)", c)
	}
}

// TestWriterLearnsWhichOfARefusedBatchIsTooLarge: the broker refuses a
// batch, not a message, and kgo fails every message queued behind it in
// the partition with the same error. The writer sends them one at a time
// to learn which is too large: only that one is replaced, in its place,
// and the others go out as they are, in order.
func TestWriterLearnsWhichOfARefusedBatchIsTooLarge(t *testing.T) {
	b := startLimited(t, 100000)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	_, err := b.client.AlterConfigs(ctx, &kafka.AlterConfigsRequest{Resources: []kafka.AlterConfigRequestResource{{
		ResourceType: kafka.ResourceTypeTopic, ResourceName: schemas.TopicEvents,
		Configs: []kafka.AlterConfigRequestConfig{{Name: "max.message.bytes", Value: "10000"}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	w := b.Writer(schemas.TopicEvents, func(m kafka.Message, limit int) []kafka.Message {
		return []kafka.Message{{Key: m.Key, Value: []byte("in place of " + string(m.Key))}}
	})
	defer w.Close()
	value := make([]byte, 50000) // random: the writer compresses, and zeros would pass
	rand.Read(value)
	msgs := []kafka.Message{
		{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("big"), Value: value},
		{Key: []byte("b"), Value: []byte("2")}, {Key: []byte("c"), Value: []byte("3")},
	}
	if err := w.Write(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	got := readPartition(t, b, schemas.TopicEvents, 0)
	if want := []string{"1", "in place of big", "2", "3"}; !slices.Equal(got, want) {
		t.Fatalf("events %q, want %q", got, want)
	}
	if n := testutil.ToFloat64(b.tooLarge.WithLabelValues(schemas.TopicEvents)); n != 1 {
		t.Errorf("hookline_too_large_total{topic=events} = %v, want 1", n)
	}
}

// TestWriterSendsWhatFitsUnchanged: a message of exactly the limit goes
// out as it is, whatever its shape. kgo counts a batch's header and a
// record's varints that Size does not; the batch cap leaves room for them
// and stays under the broker's limit.
func TestWriterSendsWhatFitsUnchanged(t *testing.T) {
	b := startWith(t, 1) // the limit the broker gives: 1,048,588 less 1 KiB
	w := b.Writer(schemas.TopicEvents, nil)
	defer w.Close()
	headers := make([]kafka.Header, 40)
	for i := range headers {
		headers[i] = kafka.Header{Key: fmt.Sprint("h", i), Value: []byte("some header value")}
	}
	var want []string
	for _, m := range []kafka.Message{
		{},                        // a nil key
		{Key: []byte("key")},      // a short key
		{Key: make([]byte, 9000)}, // a key with a two-byte length
		{Key: []byte("key"), Headers: headers},
	} {
		m.Value = make([]byte, b.maxBytes-Size(m))
		rand.Read(m.Value)
		if Size(m) != b.maxBytes || !w.Fits(m) {
			t.Fatalf("message of %d bytes, limit %d", Size(m), b.maxBytes)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := w.Write(ctx, []kafka.Message{m})
		cancel()
		if err != nil {
			t.Fatalf("%d headers, key of %d: %v", len(m.Headers), len(m.Key), err)
		}
		want = append(want, string(m.Value))
	}
	if got := readPartition(t, b, schemas.TopicEvents, 0); !slices.Equal(got, want) {
		t.Fatalf("events topic holds %d messages, not the %d written as they were", len(got), len(want))
	}
	if n := testutil.ToFloat64(b.tooLarge.WithLabelValues(schemas.TopicEvents)); n != 0 {
		t.Errorf("hookline_too_large_total{topic=events} = %v, want 0", n)
	}
}

// TestWriteToATopicThatDoesNotExist: kgo looks the topic up in fresh
// metadata a few times (about a second with kfake), then the write fails
// for good; a context shorter than that ends it on time.
func TestWriteToATopicThatDoesNotExist(t *testing.T) {
	b := startWith(t, 1)
	w := b.Writer("hookline.nowhere", nil)
	defer w.Close()
	msg := []kafka.Message{{Key: []byte("k"), Value: []byte("v")}}

	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	if err := w.Write(ctx, msg); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 2*time.Second {
		t.Fatalf("write with a 200 ms context: %v after %v; want its deadline, on time", err, time.Since(start))
	}

	ctx, cancel = context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start = time.Now()
	if err := w.Write(ctx, msg); !errors.Is(err, ErrPermanent) || !errors.Is(err, kerr.UnknownTopicOrPartition) ||
		time.Since(start) > 10*time.Second {
		t.Fatalf("write: %v after %v; want a permanent UNKNOWN_TOPIC_OR_PARTITION within seconds", err, time.Since(start))
	}
}

// TestWriteAfterCloseFailsAtOnce: nothing can send it.
func TestWriteAfterCloseFailsAtOnce(t *testing.T) {
	b := startWith(t, 1)
	w := b.Writer(schemas.TopicEvents, nil)
	msg := []kafka.Message{{Key: []byte("k"), Value: []byte("v")}}
	if err := w.Write(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	w.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := w.Write(ctx, msg); !errors.Is(err, ErrPermanent) || ctx.Err() != nil {
		t.Fatalf("write after close: %v; want a permanent error at once", err)
	}
}
