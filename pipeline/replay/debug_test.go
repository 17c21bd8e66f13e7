package replay

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/hookline/hookline/schemas"
)

func TestDebugOffsetsAt(t *testing.T) {
	b := startBroker(t, t.TempDir())
	defer b.Close()
	before, during, after := events("a", 20, t1), events("b", 30, t1.Add(time.Hour)), events("c", 20, t1.Add(2*time.Hour))
	produce(t, b, slices.Concat(before, during, after),
		kafka.Message{Key: []byte("bad"), Value: []byte("not json"), Time: t1.Add(time.Hour + time.Minute)})
	for _, m := range readTopic(t, b, schemas.TopicEvents) {
		t.Logf("%d/%d %s", m.Partition, m.Offset, m.Time.Sub(t1))
	}
	for _, d := range []time.Duration{0, time.Hour, 2 * time.Hour, 3 * time.Hour} {
		o, err := b.OffsetsAt(context.Background(), schemas.TopicEvents, t1.Add(d))
		t.Log(d, o, err)
	}
}
