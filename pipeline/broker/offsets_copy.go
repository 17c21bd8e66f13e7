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

// CopyOffsets moves a consumer's progress to a new group name: for every
// partition of topics where group to has no committed offset and group
// from has one, it commits from's offset into to, and it returns how many
// it copied. A partition to has an offset for is left alone, so calling it
// again changes nothing; when there is nothing to copy it costs two offset
// fetches per topic.
//
// Kafka takes such a commit (generation -1, no member id) only while the
// group has no members: call it before the group's readers join. A
// partition refused because members joined meanwhile is left to them, and
// logged.
func (b *Broker) CopyOffsets(ctx context.Context, from, to string, topics ...string) (int, error) {
	copies := map[string]map[int]int64{}
	for _, t := range topics {
		have, err := b.committed(ctx, to, t)
		if err != nil {
			return 0, err
		}
		old, err := b.committed(ctx, from, t)
		if err != nil {
			return 0, err
		}
		for p, off := range old {
			if _, ok := have[p]; !ok {
				if copies[t] == nil {
					copies[t] = map[int]int64{}
				}
				copies[t][p] = off
			}
		}
	}
	if len(copies) == 0 {
		return 0, nil
	}
	return b.commitOffsets(ctx, from, to, copies)
}

// committed returns a group's committed offsets of a topic, by partition;
// a partition without one is left out.
func (b *Broker) committed(ctx context.Context, group, topic string) (map[int]int64, error) {
	n, err := b.Partitions(ctx, topic)
	if err != nil {
		return nil, err
	}
	parts := make([]int, n)
	for p := range parts {
		parts[p] = p
	}
	resp, err := b.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		return nil, fmt.Errorf("broker: offsets of group %s on %s: %w", group, topic, err)
	}
	if errors.Is(resp.Error, kafka.GroupIdNotFound) {
		return nil, nil // a group never seen: nothing committed
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("broker: offsets of group %s on %s: %w", group, topic, resp.Error)
	}
	out := map[int]int64{}
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("broker: offsets of group %s on %s/%d: %w", group, topic, po.Partition, po.Error)
		}
		if po.CommittedOffset >= 0 {
			out[po.Partition] = po.CommittedOffset
		}
	}
	return out, nil
}

// commitOffsets commits offsets into group to outside any generation, with
// kgo: kafka-go's OffsetCommit cannot say "no leader epoch" (it sends 0,
// which a reader would check against the log).
func (b *Broker) commitOffsets(ctx context.Context, from, to string, offsets map[string]map[int]int64) (int, error) {
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addrs...),
		kgo.RetryBackoffFn(func(int) time.Duration { return 100 * time.Millisecond }))
	if err != nil {
		return 0, fmt.Errorf("broker: copy offsets of %s to %s: %w", from, to, err)
	}
	defer cl.Close()
	// OffsetCommit v10+ names topics by id, which kgo fills in for an
	// OffsetFetch but not for a commit.
	meta := kmsg.NewPtrMetadataRequest()
	for t := range offsets {
		rt := kmsg.NewMetadataRequestTopic()
		rt.Topic = kmsg.StringPtr(t)
		meta.Topics = append(meta.Topics, rt)
	}
	mresp, err := meta.RequestWith(ctx, cl)
	if err != nil {
		return 0, fmt.Errorf("broker: copy offsets of %s to %s: metadata: %w", from, to, err)
	}
	ids := map[string][16]byte{}
	names := map[[16]byte]string{}
	for _, t := range mresp.Topics {
		if t.Topic == nil {
			continue
		}
		if err := kerr.ErrorForCode(t.ErrorCode); err != nil {
			return 0, fmt.Errorf("broker: copy offsets of %s to %s: metadata of %s: %w", from, to, *t.Topic, err)
		}
		ids[*t.Topic], names[t.TopicID] = t.TopicID, *t.Topic
	}
	req := kmsg.NewPtrOffsetCommitRequest()
	req.Group = to
	req.Generation = -1 // with no member id: a commit outside any generation
	copied := 0
	for t, ps := range offsets {
		rt := kmsg.NewOffsetCommitRequestTopic()
		rt.Topic, rt.TopicID = t, ids[t]
		for p, off := range ps {
			rp := kmsg.NewOffsetCommitRequestTopicPartition() // leader epoch -1
			rp.Partition, rp.Offset = int32(p), off
			rt.Partitions = append(rt.Partitions, rp)
		}
		req.Topics = append(req.Topics, rt)
		copied += len(rt.Partitions)
	}
	resp, err := req.RequestWith(ctx, cl)
	if err != nil {
		return 0, fmt.Errorf("broker: copy offsets of %s to %s: %w", from, to, err)
	}
	var errs []error
	for _, t := range resp.Topics {
		if t.Topic == "" {
			t.Topic = names[t.TopicID]
		}
		for _, p := range t.Partitions {
			err := kerr.ErrorForCode(p.ErrorCode)
			switch {
			case err == nil:
			case errors.Is(err, kerr.UnknownMemberID), errors.Is(err, kerr.IllegalGeneration), errors.Is(err, kerr.RebalanceInProgress):
				// The group has members now: they own its offsets.
				copied--
				b.log.Warn("offset not copied: the group has members already", "from", from, "to", to, "topic", t.Topic, "partition", p.Partition, "err", err)
			default:
				copied--
				errs = append(errs, fmt.Errorf("%s/%d: %w", t.Topic, p.Partition, err))
			}
		}
	}
	if len(errs) > 0 {
		return copied, fmt.Errorf("broker: copy offsets of %s to %s: %w", from, to, errors.Join(errs...))
	}
	if copied > 0 {
		b.log.Info("committed offsets copied to a new group", "from", from, "to", to, "partitions", copied)
	}
	return copied, nil
}
