package matcher

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/google/uuid"
	"github.com/segmentio/kafka-go"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/schemas"
)

// Group is the matcher's consumer group.
const Group = "hookline-matcher"

// Stage runs the matcher as a consumer of hookline.events.
type Stage struct {
	m      *Matcher
	reader *kafka.Reader
	jobs   *kafka.Writer
	dead   *kafka.Writer
	log    *slog.Logger
}

// NewStage wires the matcher to the broker.
func NewStage(b *broker.Broker, webhooks Webhooks, log *slog.Logger) *Stage {
	return &Stage{
		m:      New(webhooks),
		reader: b.GroupReader(schemas.TopicEvents, Group),
		jobs:   b.Writer(schemas.TopicDeliveries),
		dead:   b.Writer(schemas.TopicDead),
		log:    log.With("stage", "matcher"),
	}
}

// Run consumes until ctx is cancelled, then finishes the batch in flight.
func (s *Stage) Run(ctx context.Context) error {
	err := broker.Consume(ctx, s.reader, broker.ConsumeConfig{Name: "matcher"}, s.handle, s.log)
	s.reader.Close()
	s.jobs.Close()
	s.dead.Close()
	return err
}

// eventNamespace derives ids for events published without one from their
// position in the topic, so that reading them again gives the same id.
var eventNamespace = uuid.MustParse("6f1c8a8e-4a55-4c3e-9d0e-2f6a1c7b9e10")

func (s *Stage) handle(ctx context.Context, msgs []kafka.Message) error {
	var jobs, dead []kafka.Message
	for _, msg := range msgs {
		fallback := uuid.NewSHA1(eventNamespace, fmt.Appendf(nil, "%s/%d/%d", msg.Topic, msg.Partition, msg.Offset)).String()
		ev, err := schemas.DecodeEvent(msg.Value, msg.Time, fallback)
		if err != nil {
			s.log.Warn("dead-lettering input event", "partition", msg.Partition, "offset", msg.Offset, "err", err)
			dead = append(dead, broker.DeadLetter(msg, err.Error()))
			continue
		}
		out, err := s.m.Process(ctx, Input{Event: ev, Time: msg.Time})
		if err != nil {
			dead = append(dead, broker.DeadLetter(msg, err.Error()))
			continue
		}
		for _, job := range out {
			value, err := json.Marshal(job)
			if err != nil {
				return fmt.Errorf("matcher: encode job: %w", err)
			}
			jobs = append(jobs, kafka.Message{Key: []byte(job.WebhookID), Value: value})
		}
	}
	if err := broker.Write(ctx, s.dead, dead); err != nil {
		return err
	}
	return broker.Write(ctx, s.jobs, jobs)
}
