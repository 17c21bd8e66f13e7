package replay

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/schemas"
)

// stretch is the stage.Reader of a replay: the partitions of
// hookline.events from their Next to their End, read with read_committed
// (an aborted transaction's events are never replayed); io.EOF once every
// partition is read to its End. Its commits are the replay's checkpoints.
type stretch struct {
	r       *broker.Reader
	end     map[int]int64 // partition → End, for the partitions not read to it yet
	timeout time.Duration
	ru      *runner
	stopped atomic.Bool // a checkpoint found the replay over (errStopped)
}

func newStretch(b *broker.Broker, parts []schemas.ReplayPartition, timeout time.Duration, ru *runner) (*stretch, error) {
	s := &stretch{end: map[int]int64{}, timeout: timeout, ru: ru}
	from := map[int]int64{}
	for _, p := range parts {
		if p.Next < p.End {
			from[p.Partition] = p.Next
			s.end[p.Partition] = p.End
		}
	}
	if len(from) == 0 {
		return s, nil
	}
	r, err := b.PartitionsReader(schemas.TopicEvents, from)
	if err != nil {
		return nil, err
	}
	s.r = r
	return s, nil
}

func (s *stretch) finished() bool { return len(s.end) == 0 }

// FetchMessage returns the next message of the stretch. Nothing arriving
// within the timeout while the stretch is not read is an error (the topic
// deleted, the broker gone).
func (s *stretch) FetchMessage(ctx context.Context) (kafka.Message, error) {
	for {
		if s.stopped.Load() {
			return kafka.Message{}, errStopped
		}
		if s.finished() {
			return kafka.Message{}, io.EOF
		}
		fctx, cancel := context.WithTimeout(ctx, s.timeout)
		m, err := s.r.FetchMessage(fctx)
		cancel()
		switch {
		case ctx.Err() != nil:
			return kafka.Message{}, ctx.Err()
		case err != nil:
			return kafka.Message{}, fmt.Errorf("read %s (ends %v): %w", schemas.TopicEvents, s.end, err)
		}
		end, reading := s.end[m.Partition]
		if !reading || m.Offset >= end {
			s.done(m.Partition)
			continue
		}
		if m.Offset+1 >= end {
			s.done(m.Partition)
		}
		return m, nil
	}
}

// done marks a partition read to its end; its live traffic is not fetched.
func (s *stretch) done(partition int) {
	if _, ok := s.end[partition]; ok {
		delete(s.end, partition)
		s.r.Pause(partition)
	}
}

// CommitMessages saves the replay's progress up to msgs.
func (s *stretch) CommitMessages(ctx context.Context, msgs ...kafka.Message) error {
	err := s.ru.checkpoint(ctx, msgs)
	if errors.Is(err, errStopped) {
		s.stopped.Store(true)
	}
	return err
}

func (s *stretch) Close() error {
	if s.r != nil {
		return s.r.Close()
	}
	return nil
}
