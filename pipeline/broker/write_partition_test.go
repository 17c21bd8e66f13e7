package broker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/hookline/hookline/schemas"
)

// TestHashPartitionerIsKafkaGosHash: for every key, among 1 to 12
// partitions, the writer's partitioner picks the partition kafka-go's
// kafka.Hash picks, which the data already written and the replay manager
// rely on.
func TestHashPartitionerIsKafkaGosHash(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	keys := [][]byte{{}, []byte("webhook-1"), {0xff, 0xfe, 0x00}}
	for i := range 1000 {
		keys = append(keys, fmt.Appendf(nil, "wh_%d", i), fmt.Appendf(nil, "%08x-%04x-%04x", rng.Uint32(), rng.Uint32()&0xffff, i))
		key := make([]byte, rng.IntN(64))
		for j := range key {
			key[j] = byte(rng.UintN(256))
		}
		keys = append(keys, key)
	}
	p := hashPartitioner{}.ForTopic(schemas.TopicDeliveries)
	for n := 1; n <= 12; n++ {
		partitions := make([]int, n)
		for i := range partitions {
			partitions[i] = i
		}
		for _, key := range keys {
			want := (&kafka.Hash{}).Balance(kafka.Message{Key: key}, partitions...)
			r := &kgo.Record{Key: key}
			if got := p.Partition(r, n); got != want || !p.RequiresConsistency(r) {
				t.Fatalf("key %q among %d partitions: partition %d (consistent %v), kafka.Hash says %d",
					key, n, got, p.RequiresConsistency(r), want)
			}
		}
	}
	// A nil key goes round-robin, wherever kgo can write now.
	for i := range 7 {
		r := &kgo.Record{}
		if got := p.Partition(r, 3); got != i%3 || p.RequiresConsistency(r) {
			t.Fatalf("nil key %d: partition %d (consistent %v), want %d, not consistent", i, got, p.RequiresConsistency(r), i%3)
		}
	}
}

// TestWriterPartitionsByKafkaGosHash: what a Writer produces is in the
// partition kafka.Hash names for its key.
func TestWriterPartitionsByKafkaGosHash(t *testing.T) {
	const partitions, n = 6, 300
	b := startWith(t, partitions)
	w := b.Writer(schemas.TopicEvents, nil)
	defer w.Close()
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		msgs[i] = kafka.Message{Key: fmt.Appendf(nil, "wh_%d", i), Value: []byte("v")}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := w.Write(ctx, msgs); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.Addrs()...), kgo.ConsumeTopics(schemas.TopicEvents),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	all := []int{0, 1, 2, 3, 4, 5}
	used := map[int32]bool{}
	for read := 0; read < n; {
		fs := cl.PollFetches(ctx)
		if err := fs.Err0(); err != nil {
			t.Fatalf("read %d of %d: %v", read, n, err)
		}
		fs.EachRecord(func(r *kgo.Record) {
			read++
			used[r.Partition] = true
			if want := (&kafka.Hash{}).Balance(kafka.Message{Key: r.Key}, all...); int(r.Partition) != want {
				t.Errorf("key %q in partition %d, kafka.Hash says %d", r.Key, r.Partition, want)
			}
		})
	}
	if len(used) != partitions {
		t.Errorf("%d keys went to %d partitions of %d", n, len(used), partitions)
	}
}
