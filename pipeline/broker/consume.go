package broker

import (
	"context"
	"log/slog"
	"time"

	"github.com/segmentio/kafka-go"
)

// Handler processes a batch of messages and returns nil only once its
// output is durable (produced with acks=all, or stored). It gets a context
// that is not cancelled by shutdown, so that a batch in flight finishes.
type Handler func(ctx context.Context, msgs []kafka.Message) error

// Fetcher is the part of a kafka.Reader the consume loop uses.
type Fetcher interface {
	FetchMessage(ctx context.Context) (kafka.Message, error)
	CommitMessages(ctx context.Context, msgs ...kafka.Message) error
}

// ConsumeConfig tunes a consume loop.
type ConsumeConfig struct {
	// Name labels log lines.
	Name string
	// MaxBatch caps the messages handed to one Handler call. Default 500.
	MaxBatch int
	// DrainTimeout bounds how long a batch in flight may take to finish
	// after shutdown begins. Default 30 s.
	DrainTimeout time.Duration
	// Linger is how long a batch waits for more messages after its first,
	// up to MaxBatch: fewer, larger batches (one fsync each) for a little
	// latency. Default 0: take what has arrived.
	Linger time.Duration
}

// Consume fetches messages, hands them to h in batches and commits each
// batch's offsets only after h returned nil. A failed batch is retried with
// backoff and never skipped: what is not committed is read again after a
// restart. Consume returns nil when ctx is cancelled, after the batch in
// flight is done.
func Consume(ctx context.Context, r Fetcher, cfg ConsumeConfig, h Handler, log *slog.Logger) error {
	if cfg.MaxBatch <= 0 {
		cfg.MaxBatch = 500
	}
	if cfg.DrainTimeout <= 0 {
		cfg.DrainTimeout = 30 * time.Second
	}
	// The fetcher lives no longer than Consume: it stops when Consume
	// returns, whatever ctx does, and Consume waits for it.
	fetchCtx, stopFetch := context.WithCancel(ctx)
	msgs := make(chan kafka.Message, cfg.MaxBatch)
	fetchErr := make(chan error, 1)
	fetched := make(chan struct{})
	defer func() { stopFetch(); <-fetched }()
	go func() {
		defer close(fetched)
		defer close(msgs)
		for {
			m, err := r.FetchMessage(fetchCtx)
			if err != nil {
				fetchErr <- err
				return
			}
			select {
			case msgs <- m:
			case <-fetchCtx.Done():
				fetchErr <- fetchCtx.Err()
				return
			}
		}
	}()
	batch := make([]kafka.Message, 0, cfg.MaxBatch)
	for {
		m, ok := <-msgs
		if !ok {
			if err := <-fetchErr; ctx.Err() == nil {
				return err
			}
			return nil
		}
		batch = gather(append(batch[:0], m), msgs, cfg)
		if err := handleAndCommit(ctx, r, cfg, h, batch, log); err != nil {
			return nil // shutting down with the batch unhandled: it is read again later
		}
	}
}

// gather adds to batch what arrives within cfg.Linger (or what has already
// arrived), up to cfg.MaxBatch.
func gather(batch []kafka.Message, msgs <-chan kafka.Message, cfg ConsumeConfig) []kafka.Message {
	var deadline <-chan time.Time
	if cfg.Linger > 0 {
		t := time.NewTimer(cfg.Linger)
		defer t.Stop()
		deadline = t.C
	}
	for len(batch) < cfg.MaxBatch {
		if deadline == nil {
			select {
			case m, ok := <-msgs:
				if !ok {
					return batch
				}
				batch = append(batch, m)
				continue
			default:
				return batch
			}
		}
		select {
		case m, ok := <-msgs:
			if !ok {
				return batch
			}
			batch = append(batch, m)
		case <-deadline:
			return batch
		}
	}
	return batch
}

// handleAndCommit retries h until it succeeds, then commits. It returns an
// error only when shutdown interrupted it.
func handleAndCommit(ctx context.Context, r Fetcher, cfg ConsumeConfig, h Handler, batch []kafka.Message, log *slog.Logger) error {
	work, cancel := DrainContext(ctx, cfg.DrainTimeout)
	defer cancel()
	backoff := 100 * time.Millisecond
	for {
		err := h(work, batch)
		if err == nil {
			err = r.CommitMessages(work, batch...)
		}
		if err == nil {
			return nil
		}
		if work.Err() != nil {
			return work.Err()
		}
		log.Warn("batch failed, retrying", "stage", cfg.Name, "messages", len(batch), "err", err, "backoff", backoff)
		select {
		case <-work.Done():
			return work.Err()
		case <-time.After(backoff):
		}
		backoff = min(backoff*2, 5*time.Second)
	}
}

// DrainContext is not cancelled with parent, but expires timeout after
// parent is cancelled: in-flight work finishes, bounded.
func DrainContext(parent context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.WithoutCancel(parent))
	stop := context.AfterFunc(parent, func() {
		t := time.AfterFunc(timeout, cancel)
		context.AfterFunc(ctx, func() { t.Stop() })
	})
	return ctx, func() { stop(); cancel() }
}
