package replay

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/hookline/hookline/schemas"
)

// resolve fixes the stretch [start, end) of every partition to read.
func (m *Manager) resolve(ctx context.Context, req schemas.ReplayRequest) ([]schemas.ReplayPartition, error) {
	n, err := m.b.Partitions(ctx, schemas.TopicEvents)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	// Its end is the last stable offset: its reader is read_committed, and
	// a producer's transaction left open must not keep it from ending.
	end, err := m.b.StableOffsets(ctx, schemas.TopicEvents)
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	// The first offset still held: older ones were dropped by retention.
	first, err := m.b.OffsetsAt(ctx, schemas.TopicEvents, time.Unix(0, 0))
	if err != nil {
		return nil, fmt.Errorf("replay: %w", err)
	}
	start, err := m.position(ctx, *req.From, "from", n, end)
	if err != nil {
		return nil, err
	}
	stop := map[int]int64{}
	for p := range start {
		stop[p] = end[p]
	}
	if req.To != nil {
		to, err := m.position(ctx, *req.To, "to", n, end)
		if err != nil {
			return nil, err
		}
		for p := range start {
			if off, ok := to[p]; ok {
				stop[p] = off
			}
		}
	}
	parts := make([]schemas.ReplayPartition, 0, len(start))
	for p, s := range start {
		s = max(s, first[p])
		e := max(stop[p], s) // a time to before an offset from: nothing
		parts = append(parts, schemas.ReplayPartition{Partition: p, Start: s, End: e, Next: s})
	}
	slices.SortFunc(parts, func(a, b schemas.ReplayPartition) int { return cmp.Compare(a.Partition, b.Partition) })
	return parts, nil
}

// position turns a validated position into offsets by partition: every
// partition for a time, the named ones for offsets, which must exist and
// not lie past the end.
func (m *Manager) position(ctx context.Context, pos schemas.ReplayPosition, field string, n int, end map[int]int64) (map[int]int64, error) {
	if pos.Time != nil {
		out, err := m.b.OffsetsAt(ctx, schemas.TopicEvents, *pos.Time)
		if err != nil {
			return nil, fmt.Errorf("replay: %w", err)
		}
		return out, nil
	}
	out := pos.PartitionOffsets()
	for p, off := range out {
		f := fmt.Sprintf("%s.offsets.%d", field, p)
		if p >= n {
			return nil, &schemas.FieldError{Field: f, Message: fmt.Sprintf("no such partition: %s has %d (0 to %d)", schemas.TopicEvents, n, n-1)}
		}
		if off > end[p] {
			return nil, &schemas.FieldError{Field: f, Message: fmt.Sprintf("is past the end of partition %d (%d)", p, end[p])}
		}
	}
	return out, nil
}

func utcPosition(p schemas.ReplayPosition) schemas.ReplayPosition {
	if p.Time != nil {
		t := p.Time.UTC()
		p.Time = &t
	}
	return p
}
