package broker

import "github.com/twmb/franz-go/pkg/kgo"

// hashPartitioner puts a record in the partition kafka-go's kafka.Hash
// balancer (v0.4.51, balancer.go) would: the FNV-1a 32 hash of the key,
// taken as an int32, modulo the partition count, negated when negative
// (Sarama's hashPartitioner). Hookline's topics were written with kafka.Hash
// and other code computes partitions with it (the replay manager finds a
// replay's partition that way): one key must stay in one partition.
//
// A nil key goes round-robin, as kafka.Hash sends it, over the partitions
// kgo can write to now; an empty key is a key, hashed.
type hashPartitioner struct{}

func (hashPartitioner) ForTopic(string) kgo.TopicPartitioner { return new(hashTopicPartitioner) }

// hashTopicPartitioner partitions one topic. kgo partitions one record of
// a topic at a time, so next needs no lock.
type hashTopicPartitioner struct{ next uint }

// RequiresConsistency is true for a keyed record: it waits for its own
// partition, however long that partition is unavailable, rather than go
// to another.
func (*hashTopicPartitioner) RequiresConsistency(r *kgo.Record) bool { return r.Key != nil }

func (p *hashTopicPartitioner) Partition(r *kgo.Record, n int) int {
	if r.Key == nil {
		i := p.next % uint(n)
		p.next++
		return int(i)
	}
	return hashPartition(r.Key, n)
}

// HashPartition is the partition among n that Writer gives a record keyed
// key (kafka.Hash's): a job's on hookline.deliveries, keyed by its webhook
// id.
func HashPartition(key []byte, n int) int { return hashPartition(key, n) }

// hashPartition is kafka.Hash's partition of key among n partitions.
func hashPartition(key []byte, n int) int {
	h := uint32(2166136261) // FNV-1a 32: offset basis, then xor and multiply by the prime
	for _, c := range key {
		h ^= uint32(c)
		h *= 16777619
	}
	p := int32(h) % int32(n)
	if p < 0 {
		p = -p
	}
	return int(p)
}
