package sender

import (
	"context"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/schemas"
)

// TestHealthGoesOnFromTheTopic: since when an endpoint fails is written to
// hookline.endpoints, so a sender that takes the endpoint over (here, a
// new one on the same broker) goes on with the same clock; a success ends
// it, for the next owner too.
func TestHealthGoesOnFromTheTopic(t *testing.T) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := broker.Start(ctx, broker.Config{DataDir: t.TempDir(), Partitions: 2}, log)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// owner runs a health tracker until stopped, which writes what is left.
	owner := func(do func(h *health)) {
		t.Helper()
		h := newHealth(b, nil, time.Now, log)
		runCtx, stop := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- h.run(runCtx) }()
		if err := h.t.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		do(h)
		stop()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	first := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	owner(func(h *health) {
		if got := h.note("w1", false, first); !got.Equal(first) {
			t.Fatalf("failing since %v after a failure at %v", got, first)
		}
		if got := h.note("w1", false, first.Add(time.Hour)); !got.Equal(first) {
			t.Fatalf("a later failure moved the start to %v", got)
		}
		h.note("w2", true, first)
		h.breakerChanged("w3", BreakerOpen)
	})
	owner(func(h *health) {
		if row, _ := h.t.Get("w3"); row.Breaker != BreakerOpen {
			t.Fatalf("w3's breaker on the topic: %q, want open", row.Breaker)
		}
		h.note("w3", false, first) // the next owner takes it over, its own breaker closed
		if got := h.note("w1", false, first.Add(48*time.Hour)); !got.Equal(first) {
			t.Fatalf("the next owner's clock starts at %v, want the first owner's %v", got, first)
		}
		if got := h.note("w2", false, first.Add(time.Hour)); !got.Equal(first.Add(time.Hour)) {
			t.Fatalf("w2 failing since %v", got)
		}
		if got := h.note("w1", true, first.Add(49*time.Hour)); !got.IsZero() {
			t.Fatalf("a success left the endpoint failing since %v", got)
		}
	})
	owner(func(h *health) {
		if got := h.note("w1", false, first.Add(50*time.Hour)); !got.Equal(first.Add(50 * time.Hour)) {
			t.Fatalf("after a success the clock starts at %v, want the next failure", got)
		}
		// The owner that took w3 over wrote its own breaker's state, not
		// the last owner's open circuit.
		if row, _ := h.t.Get("w3"); row.Breaker != BreakerClosed {
			t.Fatalf("w3's breaker on the topic after a takeover: %q, want closed", row.Breaker)
		}
	})
}

// TestFailingTooLongCountsFromTheLastChange: the clock starts at the first
// failure, or at the webhook's last change if that came later.
func TestFailingTooLongCountsFromTheLastChange(t *testing.T) {
	s := &core{cfg: coreConfig{disableAfter: 5 * 24 * time.Hour}}
	since := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	wh := schemas.Webhook{ID: "w", Enabled: true}
	before := since.Add(-time.Hour)
	for _, tt := range []struct {
		name    string
		since   time.Time
		updated time.Time
		at      time.Time
		want    bool
	}{
		{"not failing", time.Time{}, since, since.Add(30 * 24 * time.Hour), false},
		{"failing 4 days", since, before, since.Add(4 * 24 * time.Hour), false},
		{"failing 5 days", since, before, since.Add(5 * 24 * time.Hour), true},
		{"changed a day in", since, since.Add(24 * time.Hour), since.Add(5 * 24 * time.Hour), false},
		{"changed a day in, 6 days", since, since.Add(24 * time.Hour), since.Add(6 * 24 * time.Hour), true},
	} {
		wh.UpdatedAt = tt.updated
		if got := s.failingTooLong(wh, tt.since, tt.at); got != tt.want {
			t.Errorf("%s: failingTooLong = %v, want %v", tt.name, got, tt.want)
		}
	}
}
