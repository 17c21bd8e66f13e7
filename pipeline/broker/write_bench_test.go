package broker

import (
	"context"
	"fmt"
	"testing"

	"github.com/hookline/hookline/schemas"
	"github.com/segmentio/kafka-go"
)

// BenchmarkWriterWrite: one outbox write of 20 small messages over the
// partitions of a topic, as the stages make them under load.
func BenchmarkWriterWrite(b *testing.B) {
	br := startWith(b, 6)
	w := br.Writer(schemas.TopicEvents, nil)
	defer w.Close()
	msgs := make([]kafka.Message, 20)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: []byte(fmt.Sprint("k", i)), Value: make([]byte, 256)}
	}
	ctx := context.Background()
	if err := w.Write(ctx, msgs); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := w.Write(ctx, msgs); err != nil {
			b.Fatal(err)
		}
	}
}
