package broker

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/segmentio/kafka-go"
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
