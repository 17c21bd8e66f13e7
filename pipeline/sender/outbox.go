package sender

import "github.com/segmentio/kafka-go"

// output is what one job produces, and the job to mark done once it is
// durable.
type output struct {
	msgs []kafka.Message
	w    work
}

// runOutbox produces outputs in batches, one write at a time, and marks
// their jobs done after the broker acknowledged them. A failed write is
// retried, never dropped; at the drain deadline the batch is abandoned and
// its jobs are read again after a restart.
func (s *Stage) runOutbox() {
	const maxBatch = 2000
	batch := make([]output, 0, maxBatch)
	var msgs []kafka.Message
	for first := range s.outbox {
		batch = append(batch[:0], first)
	gather:
		for len(batch) < maxBatch {
			select {
			case o, ok := <-s.outbox:
				if !ok {
					break gather
				}
				batch = append(batch, o)
			default:
				break gather
			}
		}
		msgs = msgs[:0]
		for _, o := range batch {
			msgs = append(msgs, o.msgs...)
		}
		ok := s.write(msgs)
		for _, o := range batch {
			if ok {
				s.release(o.w)
			} else {
				s.abandon(o.w)
			}
		}
	}
}

func (s *Stage) write(msgs []kafka.Message) bool {
	if err := s.out.Write(s.work, msgs); err != nil {
		s.log.Error("output not written; its jobs will be read again", "messages", len(msgs), "err", err)
		return false
	}
	return true
}
