package broker

import (
	"context"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"
)

// OffsetsAt returns, per partition, the offset of the first message whose
// timestamp is at or after t; a partition without one answers its end
// offset, so that [OffsetsAt(a), OffsetsAt(b)) holds the messages stored
// from a until b. A time before 1970 is the start of every partition.
func (b *Broker) OffsetsAt(ctx context.Context, topic string, t time.Time) (map[int]int64, error) {
	// The end first: a message produced between the two requests is then
	// past the end rather than skipped.
	end, err := b.EndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	ms := max(t.UnixMilli(), 0)
	reqs := make([]kafka.OffsetRequest, 0, len(end))
	for p := range end {
		reqs = append(reqs, kafka.OffsetRequest{Partition: p, Timestamp: ms})
	}
	resp, err := b.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}})
	if err != nil {
		return nil, fmt.Errorf("broker: list offsets of %s at %s: %w", topic, t.UTC().Format(time.RFC3339), err)
	}
	out := make(map[int]int64, len(end))
	for p, off := range end {
		out[p] = off
	}
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("broker: list offsets of %s/%d at %s: %w", topic, po.Partition, t.UTC().Format(time.RFC3339), po.Error)
		}
		// kafka-go files a found offset under Offsets; "none at or
		// after t" comes back as offset -1, which it files as LastOffset.
		for off := range po.Offsets {
			if off >= 0 && off < out[po.Partition] {
				out[po.Partition] = off
			}
		}
	}
	return out, nil
}
