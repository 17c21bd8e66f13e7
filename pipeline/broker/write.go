package broker

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/hookline/hookline/schemas"
)

// Write produces messages and returns once the broker acknowledged all of
// them; no messages is a no-op.
func Write(ctx context.Context, w *kafka.Writer, msgs []kafka.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		return fmt.Errorf("write %s: %w", w.Topic, err)
	}
	return nil
}

// DeadLetter builds the hookline.dead message for a message that could not
// be processed: the original bytes, where they came from, and why.
func DeadLetter(msg kafka.Message, reason string) kafka.Message {
	value, _ := json.Marshal(schemas.DeadLetter{
		Reason: reason, At: msg.Time.UTC(), Topic: msg.Topic, Partition: msg.Partition,
		Offset: msg.Offset, Key: string(msg.Key), Value: string(msg.Value),
	})
	return kafka.Message{Key: msg.Key, Value: value}
}

// WriteRetrying produces messages like Write, retrying a failed write with
// a growing backoff (50 ms doubling to 5 s) until it succeeds or ctx ends:
// output is never dropped, only left unwritten at shutdown, and then the
// input that made it is not committed.
func WriteRetrying(ctx context.Context, w *kafka.Writer, msgs []kafka.Message, log *slog.Logger) error {
	backoff := 50 * time.Millisecond
	for {
		err := Write(ctx, w, msgs)
		if err == nil || ctx.Err() != nil {
			return err
		}
		log.Warn("write failed, retrying", "topic", w.Topic, "messages", len(msgs), "err", err, "backoff", backoff)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}
