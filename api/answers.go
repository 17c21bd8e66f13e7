package api

import (
	"context"
	"encoding/json"
	"log/slog"
	"slices"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/pipeline/table"
	"github.com/hookline/hookline/schemas"
)

// Answers is the AnswerStore of hookline.idempotency: every API process
// folds the whole topic (a table) and writes the answers it gives there,
// so a retry finds the first answer in any process and after a restart.
// Answers older than the window are removed by tombstones (every process
// sweeps; removing twice is harmless), and so are the oldest beyond
// maxAnswers answers or maxAnswerBytes of bodies, which bound the memory
// every process spends on them.
type Answers struct {
	t      *table.Table[schemas.Answer]
	window time.Duration
	now    func() time.Time
	log    *slog.Logger
	// synced: the table has read what the topic held when the first
	// lookup came; until then a lookup waits for it.
	synced atomic.Bool
}

// maxAnswerBytes bounds the bodies kept, all answers together (one may be
// up to 256 KiB): past it the oldest go first (smaller in tests).
var maxAnswerBytes = 64 << 20

const (
	maxAnswers    = 100_000
	answersSweep  = time.Minute
	answerVersion = 1
)

// NewAnswers returns the answers kept on hookline.idempotency for
// IdempotencyKeyWindow; Run reads and sweeps them.
func NewAnswers(b *broker.Broker, log *slog.Logger) *Answers {
	return newAnswers(b, IdempotencyKeyWindow, time.Now, log)
}

func newAnswers(b *broker.Broker, window time.Duration, now func() time.Time, log *slog.Logger) *Answers {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Answers{t: table.New(b, schemas.TopicIdempotency, answerCodec{}, nil, log), window: window, now: now, log: log}
}

// Run follows the topic and sweeps it every minute until ctx ends.
func (a *Answers) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return a.t.Run(ctx) })
	g.Go(func() error {
		t := time.NewTicker(answersSweep)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return nil
			case <-t.C:
			}
			if err := a.sweep(ctx); err != nil && ctx.Err() == nil {
				a.log.Warn("could not remove old Idempotency-Key answers; trying again in a minute", "err", err)
			}
		}
	})
	return g.Wait()
}

// Answer returns the answer kept for key within the window.
func (a *Answers) Answer(ctx context.Context, key string) (schemas.Answer, bool, error) {
	if !a.synced.Load() {
		// Bounded: a broker that is down answers 503, not a request that
		// hangs until its client gives up.
		ctx, cancel := context.WithTimeout(ctx, keepTimeout)
		defer cancel()
		if err := a.t.Sync(ctx); err != nil {
			return schemas.Answer{}, false, err
		}
		a.synced.Store(true)
	}
	v, ok := a.t.Get(key)
	if !ok || !a.live(v) {
		return schemas.Answer{}, false, nil
	}
	return v, true, nil
}

// Keep writes an answer, unless the key has a live one already (which
// stays the first). One past its window is removed first: a row is
// written once, at version 1.
func (a *Answers) Keep(ctx context.Context, v schemas.Answer) error {
	if old, ok := a.t.Get(v.Key); ok {
		if a.live(old) {
			return nil
		}
		if err := a.t.Remove(ctx, []string{v.Key}); err != nil {
			return err
		}
	}
	return a.t.Put(ctx, []schemas.Answer{v})
}

func (a *Answers) live(v schemas.Answer) bool { return a.now().Sub(v.At) < a.window }

// sweep removes the answers past the window and the oldest beyond
// maxAnswers or maxAnswerBytes.
func (a *Answers) sweep(ctx context.Context) error {
	type row struct {
		key  string
		at   time.Time
		size int
	}
	old := map[string]time.Time{} // key → the answer's time when it was read
	var rows []row
	total := 0
	a.t.Each(func(key string, v schemas.Answer) {
		if a.live(v) {
			rows = append(rows, row{key, v.At, len(v.Body)})
			total += len(v.Body)
		} else {
			old[key] = v.At
		}
	})
	slices.SortFunc(rows, func(x, y row) int { return x.at.Compare(y.at) })
	for i := 0; i < len(rows) && (len(rows)-i > maxAnswers || total > maxAnswerBytes); i++ {
		old[rows[i].key] = rows[i].at
		total -= rows[i].size
	}
	// A key answered again since it was read above (a Keep after its
	// window, here or in another process) keeps its new answer.
	keys := make([]string, 0, len(old))
	for key, at := range old {
		if v, ok := a.t.Get(key); ok && v.At.Equal(at) {
			keys = append(keys, key)
		}
	}
	slices.Sort(keys)
	return a.t.Remove(ctx, keys)
}

// answerCodec is hookline.idempotency's: JSON, one version per row.
type answerCodec struct{}

func (answerCodec) Decode(value []byte) (schemas.Answer, error) {
	var v schemas.Answer
	if err := json.Unmarshal(value, &v); err != nil {
		return v, err
	}
	return v, v.Validate()
}

func (answerCodec) Encode(v schemas.Answer) ([]byte, error) { return json.Marshal(v) }
func (answerCodec) Key(v schemas.Answer) string             { return v.Key }
func (answerCodec) Version(schemas.Answer) int64            { return answerVersion }
func (answerCodec) Deleted(schemas.Answer) bool             { return false }
