package stage

import (
	"context"
	"fmt"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/hookline/hookline/schemas"
)

// gatherer is an outbox whose gather can be called directly.
func gatherer(cfg Config) *Outbox {
	cfg = cfg.WithDefaults()
	return newOutbox(&Runner{cfg: cfg})
}

func gatherFirst(o *Outbox, hurry <-chan struct{}) []emission {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return o.gather([]emission{<-o.ch}, t, hurry)
}

// TestTheOutboxLingerGathersEmissionsIntoOneWrite: with OutboxLinger a
// write waits for emissions that come after its first, up to
// OutboxBatch; without it, it takes what is queued; at the soft stop it
// waits no longer; and once the linger is over it goes with what it has.
func TestTheOutboxLingerGathersEmissionsIntoOneWrite(t *testing.T) {
	emit := func(o *Outbox, n int, every time.Duration) {
		go func() {
			for range n {
				time.Sleep(every)
				o.Emit([]kafka.Message{{Value: []byte("x")}})
			}
		}()
	}
	t.Run("waits for a full batch", func(t *testing.T) {
		o := gatherer(Config{OutboxBatch: 4, OutboxLinger: time.Hour})
		emit(o, 4, 20*time.Millisecond)
		if got := len(gatherFirst(o, nil)); got != 4 {
			t.Fatalf("a lingering write took %d emissions, want all 4", got)
		}
	})
	t.Run("without a linger, what is queued", func(t *testing.T) {
		o := gatherer(Config{OutboxBatch: 4})
		emit(o, 4, 50*time.Millisecond)
		if got := len(gatherFirst(o, nil)); got != 1 {
			t.Fatalf("a write without linger took %d emissions, want the 1 queued", got)
		}
	})
	t.Run("the soft stop ends the wait", func(t *testing.T) {
		o := gatherer(Config{OutboxBatch: 4, OutboxLinger: time.Hour})
		emit(o, 1, 0)
		hurry := make(chan struct{})
		time.AfterFunc(50*time.Millisecond, func() { close(hurry) })
		done := make(chan int, 1)
		go func() { done <- len(gatherFirst(o, hurry)) }()
		select {
		case got := <-done:
			if got != 1 {
				t.Fatalf("%d emissions, want 1", got)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("a lingering write went on waiting past the soft stop")
		}
	})
	t.Run("the linger is a bound", func(t *testing.T) {
		o := gatherer(Config{OutboxBatch: 4, OutboxLinger: 30 * time.Millisecond})
		emit(o, 1, 0)
		start := time.Now()
		got := len(gatherFirst(o, nil))
		if took := time.Since(start); got != 1 || took < 30*time.Millisecond || took > 10*time.Second {
			t.Fatalf("%d emissions after %v, want 1 after the 30 ms linger", got, took)
		}
	})
}

// TestALingeringOutboxWritesEverythingAndStops: a stage with a long
// OutboxLinger still writes every output, and stops without waiting it.
func TestALingeringOutboxWritesEverythingAndStops(t *testing.T) {
	b := startBroker(t, t.TempDir(), 0)
	defer b.Close()
	produce(t, b, values("v", 30)...)
	stop := run(t, b, Config{OutboxLinger: time.Hour, OutboxBatch: 20, CommitInterval: 10 * time.Millisecond},
		handlerFunc(func(_ context.Context, batch []*Input, out *Outbox) error {
			for _, in := range batch {
				out.Emit([]kafka.Message{{Topic: schemas.TopicDeliveries, Key: in.Key, Value: in.Value}}, in)
			}
			return nil
		}))
	// 30 outputs in batches of 20: the first 20 go when the batch is full;
	// the last 10 wait for the linger, which the stop cuts short.
	waitFor(t, "a full batch to be written", func() bool { return count(t, b, schemas.TopicDeliveries) >= 20 })
	start := time.Now()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("the stop took %v: it waited for the linger", took)
	}
	if got := count(t, b, schemas.TopicDeliveries); got != 30 {
		t.Errorf("%d outputs written, want 30", got)
	}
}

// BenchmarkOutbox: emissions of one 1 KiB message each, from 16
// goroutines that each emit one every millisecond, as a sender's attempts
// end, written over kfake. cpu-ns/op is the process's CPU (the outbox,
// kgo and kfake) per emission written: with the sender's 2 ms linger the
// writes are fewer and larger, and each emission costs less.
func BenchmarkOutbox(b *testing.B) {
	for _, linger := range []time.Duration{0, 2 * time.Millisecond} {
		b.Run(fmt.Sprintf("linger=%v", linger), func(b *testing.B) {
			br := startBroker(b, b.TempDir(), 0)
			defer br.Close()
			w := br.Writer(schemas.TopicDeliveries, nil)
			defer w.Close()
			cfg := Config{OutboxLinger: linger}.WithDefaults()
			r := &Runner{cfg: cfg, w: w, log: quiet, failed: make(chan struct{})}
			o := newOutbox(r)
			r.out = o
			done := make(chan struct{})
			go func() { defer close(done); o.run(context.Background(), nil) }()
			value := make([]byte, 1024)
			var emitters sync.WaitGroup
			b.ResetTimer()
			cpu0 := processCPU(b)
			n := b.N
			for g := range 16 {
				emitters.Go(func() {
					var written sync.WaitGroup
					for i := g; i < n; i += 16 {
						written.Add(1)
						o.EmitThen([]kafka.Message{{Key: fmt.Appendf(nil, "k%d", i), Value: value}}, func(bool) { written.Done() })
						time.Sleep(time.Millisecond)
					}
					written.Wait()
				})
			}
			emitters.Wait()
			b.StopTimer()
			b.ReportMetric(float64(processCPU(b)-cpu0)/float64(b.N), "cpu-ns/op")
			close(o.quit)
			<-done
		})
	}
}

// processCPU is the user and system CPU this process has used.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
