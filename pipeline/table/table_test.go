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
	// Gone deletes the row (a deleted webhook's last version).
	Gone bool `json:"gone,omitempty"`
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
func (counterCodec) Deleted(c counter) bool           { return c.Gone }

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

// TestALostChangeNeverWinsAfterCompaction: one process deletes rows while
// another changes them at the same versions. The fold keeps the first
// record of a version, compaction the last record of a key: a change that
// lost and was not made again (its row was gone by then) must not be the
// last record, or a process that folds the compacted log after a restart
// would bring the deleted row back. So after the race, the log compacted
// by the broker folds to what the whole log folded to, key by key.
func TestALostChangeNeverWinsAfterCompaction(t *testing.T) {
	start, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	b, err := broker.Start(start, broker.Config{DataDir: t.TempDir(), Partitions: 2}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	a, stopA := runTable(t, b)
	other, stopOther := runTable(t, b)
	ctx := context.Background()
	const keys = 40
	for i := range keys {
		if err := a.Publish(ctx, counter{ID: fmt.Sprint("k", i), Version: 1, By: "a"}); err != nil {
			t.Fatal(err)
		}
	}
	if err := other.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range keys {
		key := fmt.Sprint("k", i)
		// Both read version 1 before either writes version 2: their
		// first tries race (the later ones do not wait).
		var read sync.WaitGroup
		read.Add(2)
		race := func(tries *int) {
			if *tries++; *tries == 1 {
				read.Done()
				read.Wait()
			}
		}
		wg.Add(2)
		go func() {
			defer wg.Done()
			tries := 0
			a.Update(ctx, key, func(c *counter) error { race(&tries); c.Version++; c.Gone, c.By = true, "a"; return nil })
		}()
		go func() {
			defer wg.Done()
			tries := 0
			other.Update(ctx, key, func(c *counter) error { race(&tries); c.Version++; c.N++; c.By = "other"; return nil })
		}()
		wg.Wait() // a key at a time: each table makes one change at a time
	}
	if err := a.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	want := map[string]counter{}
	a.Each(func(k string, v counter) { want[k] = v })
	stopA()
	stopOther()

	b.Compact()
	folded, stop := runTable(t, b)
	defer stop()
	got := map[string]counter{}
	folded.Each(func(k string, v counter) { got[k] = v })
	for i := range keys {
		key := fmt.Sprint("k", i)
		w, had := want[key]
		g, has := got[key]
		if had != has || had && (w.Version != g.Version || w.N != g.N) {
			t.Errorf("%s: the whole log folds to %+v (%v), the compacted log to %+v (%v)", key, w, had, g, has)
		}
	}
}
