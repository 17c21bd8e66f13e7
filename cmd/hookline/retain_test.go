package main

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hookline/hookline/projections"
	"github.com/hookline/hookline/projections/embedded"
)

// cutoffStore records the retention cutoffs it is asked for.
type cutoffStore struct {
	*embedded.Store
	cutoffs chan time.Time
}

func (s cutoffStore) DropBefore(ctx context.Context, t time.Time) error {
	s.cutoffs <- t
	return s.Store.DropBefore(ctx, t)
}

func TestRetainDropsWhatIsOlderThanTheRetention(t *testing.T) {
	st, err := embedded.Open(t.TempDir() + "/a.db")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var _ projections.Store = st
	store := cutoffStore{Store: st, cutoffs: make(chan time.Time, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- retain(ctx, store, 7, slog.New(slog.NewTextHandler(io.Discard, nil))) }()
	select {
	case cutoff := <-store.cutoffs:
		if want := time.Now().Add(-7 * 24 * time.Hour); cutoff.Sub(want).Abs() > time.Minute {
			t.Fatalf("cutoff = %v, want about %v", cutoff, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("retention never ran")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
