package table

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/schemas"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// counter is a row whose change is not idempotent: applied twice, it
// counts twice.
type counter struct {
	ID      string `json:"id"`
	Version int64  `json:"version"`
	N       int    `json:"n"`
	// By says who made the change, as a webhook's updated_at does: two
	// writes of the very same bytes are one change, kept once.
	By string `json:"by"`
}

type counterCodec struct{}

func (counterCodec) Decode(b []byte) (counter, error) {
	var c counter
	err := json.Unmarshal(b, &c)
	return c, err
}
func (counterCodec) Encode(c counter) ([]byte, error) { return json.Marshal(c) }
func (counterCodec) Key(c counter) string             { return c.ID }
func (counterCodec) Version(c counter) int64          { return c.Version }
func (counterCodec) Deleted(counter) bool             { return false }

func runTable(t *testing.T, b *broker.Broker) (*Table[counter], func()) {
	t.Helper()
	tab := New(b, schemas.TopicReplays, counterCodec{}, nil, quiet)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tab.Run(ctx) }()
	if err := tab.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	return tab, func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	}
}

// TestUpdatesFromTwoProcessesAreEachAppliedOnce: increments from two
// tables on one topic (two processes) at once: every one counts, none
// twice, whoever wrote a version first.
func TestUpdatesFromTwoProcessesAreEachAppliedOnce(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := broker.Start(ctx, broker.Config{DataDir: t.TempDir(), Partitions: 1}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	t1, stop1 := runTable(t, b)
	defer stop1()
	t2, stop2 := runTable(t, b)
	defer stop2()
	if err := t1.Publish(ctx, counter{ID: "c", Version: 1}); err != nil {
		t.Fatal(err)
	}
	if err := t1.Publish(ctx, counter{ID: "c", Version: 1}); !errors.Is(err, ErrConflict) {
		t.Fatalf("a second version 1: %v, want a conflict", err)
	}
	if err := t2.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	const each = 15
	var wg sync.WaitGroup
	for w, tab := range []*Table[counter]{t1, t2, t1, t2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := tab.Update(ctx, "c", func(c *counter) error {
					c.N++
					c.Version++
					c.By = fmt.Sprint(w, "/", i)
					return nil
				}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, tab := range []*Table[counter]{t1, t2} {
		if err := tab.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		if c, _ := tab.Get("c"); c.N != 4*each || c.Version != 1+4*each {
			t.Fatalf("counter %d at version %d, want %d at %d", c.N, c.Version, 4*each, 1+4*each)
		}
	}
	if _, err := t1.Update(ctx, "missing", func(*counter) error { return nil }); !errors.Is(err, ErrNotFound) {
		t.Fatalf("update of a missing row: %v", err)
	}
}
