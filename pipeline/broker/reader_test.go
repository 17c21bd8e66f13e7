package broker

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookline/hookline/schemas"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kgo"
)

// Topics of the holding tests: first attempts and a retry tier.
const (
	topicFirst = "hookline.deliveries"
	topicRetry = "hookline.retry.1s"
)

// startWith starts a broker whose topics have partitions partitions, the
// retry topics included.
func startWith(t testing.TB, partitions int, retry ...string) *Broker {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := Start(ctx, Config{DataDir: t.TempDir(), Partitions: partitions, RetryTopics: retry}, quiet)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.Close)
	return b
}

// rec is a record for a partition, due at due (zero: no header, at once).
func rec(topic string, partition int32, value string, due time.Time) *kgo.Record {
	r := &kgo.Record{Topic: topic, Partition: partition, Value: []byte(value)}
	if !due.IsZero() {
		r.Headers = []kgo.RecordHeader{{Key: "due", Value: []byte(due.Format(time.RFC3339Nano))}}
	}
	return r
}

// produceTo writes records to the partitions they name.
func produceTo(t *testing.T, b *Broker, recs ...*kgo.Record) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(b.addrs...), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// headerDue is the due function of the tests: the "due" header, or zero.
func headerDue(m kafka.Message) time.Time {
	v := Header(m, "due")
	if v == "" {
		return time.Time{}
	}
	d, err := time.Parse(time.RFC3339Nano, v)
	if err != nil {
		panic(err)
	}
	return d
}

type fetched struct {
	kafka.Message
	at time.Time
}

// fetchN fetches n messages, failing the test if they take more than
// within.
func fetchN(t *testing.T, r *Reader, n int, within time.Duration) []fetched {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	var out []fetched
	for len(out) < n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("after %d of %d messages: %v", len(out), n, err)
		}
		out = append(out, fetched{m, time.Now()})
	}
	return out
}

func values(fs []fetched) []string {
	var out []string
	for _, f := range fs {
		out = append(out, string(f.Value))
	}
	return out
}

// TestAHeldRecordHoldsOnlyItsPartition: a record due later holds the
// records behind it on its partition, even one due already, and nothing
// of another partition or another topic; held records come out in order
// once the head is due, and not before.
func TestAHeldRecordHoldsOnlyItsPartition(t *testing.T) {
	b := startWith(t, 3, topicRetry)
	due := time.Now().Add(1500 * time.Millisecond)
	past := time.Now().Add(-time.Hour)
	produceTo(t, b,
		rec(topicRetry, 0, "r0-a", due),
		rec(topicRetry, 0, "r0-b", past), // due, but behind the head
		rec(topicRetry, 0, "r0-c", due.Add(300*time.Millisecond)),
		rec(topicRetry, 1, "r1-a", past),
		rec(topicRetry, 1, "r1-b", past),
		rec(topicRetry, 2, "r2-a", time.Time{}),
		rec(topicFirst, 0, "f0-a", time.Time{}),
		rec(topicFirst, 0, "f0-b", time.Time{}),
	)
	r := b.GroupReaderOf("g", []string{topicFirst, topicRetry}, headerDue)
	defer r.Close()

	early := fetchN(t, r, 5, 30*time.Second)
	for _, f := range early {
		if f.Topic == topicRetry && f.Partition == 0 {
			t.Fatalf("%s came out with the free records", f.Value)
		}
		if !f.at.Before(due) {
			t.Fatalf("free record %s waited for the held one (at %v, due %v)", f.Value, f.at, due)
		}
	}
	got := values(early)
	slices.Sort(got)
	if want := []string{"f0-a", "f0-b", "r1-a", "r1-b", "r2-a"}; !slices.Equal(got, want) {
		t.Fatalf("free records = %v, want %v", got, want)
	}

	held := fetchN(t, r, 3, 30*time.Second)
	if got, want := values(held), []string{"r0-a", "r0-b", "r0-c"}; !slices.Equal(got, want) {
		t.Fatalf("held records = %v, want %v", got, want)
	}
	for _, f := range held {
		if d := headerDue(f.Message); f.at.Before(d) {
			t.Fatalf("%s came out at %v, before it was due at %v", f.Value, f.at, d)
		}
	}
	if held[0].at.After(due.Add(time.Second)) {
		t.Fatalf("the head came out %v after it was due: FetchMessage did not wake for it", held[0].at.Sub(due))
	}

	// The partition is fetched again: a new record of it comes out.
	produceTo(t, b, rec(topicRetry, 0, "r0-d", time.Time{}))
	if got := values(fetchN(t, r, 1, 30*time.Second)); got[0] != "r0-d" {
		t.Fatalf("after the hold: %v", got)
	}
}

// TestDueHeadsComeOutEarliestFirst: of several held heads that are due,
// the one due first comes out first; a head not due stays; a partition
// whose hold empties is no longer held.
func TestDueHeadsComeOutEarliestFirst(t *testing.T) {
	b := startWith(t, 3)
	r, err := b.PartitionsReader(topicFirst, map[int]int64{0: kafka.FirstOffset})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.due = headerDue
	t0 := time.Now()
	held := func(p int32, dues ...time.Duration) {
		h := &hold{due: t0.Add(dues[0])}
		for i, d := range dues {
			h.recs = append(h.recs, rec(topicFirst, p, fmt.Sprintf("p%d-%d", p, i), t0.Add(d)))
		}
		r.held[topicPartition{topicFirst, p}] = h
	}
	held(0, 2*time.Second, time.Second)
	held(1, time.Second)
	held(2, 3*time.Second)

	now := t0.Add(2500 * time.Millisecond)
	var got []string
	for {
		m, wake, ok := r.next(now)
		if !ok {
			if !wake.Equal(t0.Add(3 * time.Second)) {
				t.Fatalf("wake = %v, want the head of p2 at +3s", wake.Sub(t0))
			}
			break
		}
		got = append(got, string(m.Value))
	}
	if want := []string{"p1-0", "p0-0", "p0-1"}; !slices.Equal(got, want) {
		t.Fatalf("due heads came out as %v, want %v", got, want)
	}
	if len(r.held) != 1 {
		t.Fatalf("%d partitions held, want p2 alone", len(r.held))
	}
}

// counter counts the records kgo buffers: more than were written means
// some were fetched twice.
type counter struct{ n atomic.Int64 }

func (c *counter) OnFetchRecordBuffered(*kgo.Record) { c.n.Add(1) }

// TestAPausedPartitionLosesNothing: kgo strips the buffered records of a
// paused partition from a poll (source.go takeNBuffered) and keeps its
// cursor after the last record handed to the Reader, so they are fetched
// again when it resumes. 5,000 records over 2 partitions, a head of
// partition 0 due later at the 101st: every record comes out exactly
// once, in offset order per partition.
func TestAPausedPartitionLosesNothing(t *testing.T) {
	b := startWith(t, 2, topicRetry)
	const perPartition = 2500
	due := time.Now().Add(time.Second)
	var recs []*kgo.Record
	for p := range int32(2) {
		for i := range perPartition {
			d := time.Time{}
			if p == 0 && i == 100 {
				d = due
			}
			recs = append(recs, rec(topicRetry, p, fmt.Sprintf("%d-%d", p, i), d))
		}
	}
	produceTo(t, b, recs...)
	var c counter
	r := b.groupReader("g", []string{topicRetry}, headerDue, kgo.Balancers(kgo.RangeBalancer()), kgo.WithHooks(&c))
	defer r.Close()

	got := fetchN(t, r, 2*perPartition, 60*time.Second)
	next := map[int]int{}
	for _, f := range got {
		if want := fmt.Sprintf("%d-%d", f.Partition, next[f.Partition]); string(f.Value) != want {
			t.Fatalf("got %s, want %s", f.Value, want)
		}
		next[f.Partition]++
		if f.Partition == 0 && next[0] > 100 && f.at.Before(due) {
			t.Fatalf("%s came out before the head it waits behind was due", f.Value)
		}
	}
	if n := c.n.Load(); n <= 2*perPartition {
		t.Fatalf("kgo buffered %d records for %d written: no buffered record of the paused partition was stripped, the test missed its case", n, 2*perPartition)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if m, err := r.FetchMessage(ctx); err == nil {
		t.Fatalf("a record came out twice: %s", m.Value)
	}
}

// TestNothingLostOrDuplicatedWhileHolding: 1,000 records over 3
// partitions of a retry topic and 3 of another topic, due in the past and
// in the next 1.5 s, written in 10 batches while the reader reads: each
// comes out once, in offset order per partition, and none before it is
// due.
func TestNothingLostOrDuplicatedWhileHolding(t *testing.T) {
	b := startWith(t, 3, topicRetry)
	r := b.GroupReaderOf("g", []string{topicFirst, topicRetry}, headerDue)
	defer r.Close()
	const total = 1000
	rng := rand.New(rand.NewPCG(1, 2))
	offsets := map[string]int{}
	var batches [][]*kgo.Record
	for i := 0; i < total; {
		var batch []*kgo.Record
		for range total / 10 {
			topic := topicRetry
			if rng.IntN(4) == 0 {
				topic = topicFirst
			}
			p := rng.Int32N(3)
			d := time.Time{}
			if topic == topicRetry {
				d = time.Now().Add(time.Duration(rng.IntN(3000)-1500) * time.Millisecond)
			}
			key := fmt.Sprintf("%s/%d", topic, p)
			batch = append(batch, rec(topic, p, fmt.Sprintf("%s/%d", key, offsets[key]), d))
			offsets[key]++
			i++
		}
		batches = append(batches, batch)
	}
	var wg sync.WaitGroup
	wg.Go(func() {
		for _, batch := range batches {
			produceTo(t, b, batch...)
			time.Sleep(50 * time.Millisecond)
		}
	})
	got := fetchN(t, r, total, 60*time.Second)
	wg.Wait()
	next := map[string]int{}
	for _, f := range got {
		key := fmt.Sprintf("%s/%d", f.Topic, f.Partition)
		if want := fmt.Sprintf("%s/%d", key, next[key]); string(f.Value) != want {
			t.Fatalf("got %s, want %s", f.Value, want)
		}
		next[key]++
		if d := headerDue(f.Message); f.at.Before(d) {
			t.Fatalf("%s came out %v before it was due", f.Value, d.Sub(f.at))
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if m, err := r.FetchMessage(ctx); err == nil {
		t.Fatalf("a record came out twice: %s", m.Value)
	}
}

// TestOneGroupGivesPartitionPOfEveryTopicToOneReader: two readers in one
// group over two topics of equal partition counts; each partition number
// is read, in both topics, by one of them. The first reads alone for a
// while, committing nothing: when the second joins, the first is told of
// every partition it gives up (range is eager) before they go, through
// OnRevoke.
func TestOneGroupGivesPartitionPOfEveryTopicToOneReader(t *testing.T) {
	b := startWith(t, 4, topicRetry)
	topics := []string{topicFirst, topicRetry}
	var mu sync.Mutex
	var readers [2]*Reader
	assigned := [2]map[string][]int32{}
	revoked := [2]int{}          // partitions each reader was told it gave up
	readBy := map[string][]int{} // value → the readers that read it, once per read
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	join := func(i int) {
		mu.Lock()
		defer mu.Unlock()
		readers[i] = b.groupReader("g", topics, headerDue, kgo.Balancers(kgo.RangeBalancer()),
			kgo.OnPartitionsAssigned(func(_ context.Context, _ *kgo.Client, m map[string][]int32) {
				mu.Lock()
				defer mu.Unlock()
				assigned[i] = m // eager: each assignment is the whole of it
			}))
		readers[i].OnRevoke(func(_ context.Context, gone map[string][]int32, lost bool) {
			mu.Lock()
			defer mu.Unlock()
			for _, ps := range gone {
				revoked[i] += len(ps)
			}
		})
		r := readers[i]
		wg.Go(func() { // a group member must poll to take part
			for {
				m, err := r.FetchMessage(ctx)
				if err != nil {
					return
				}
				mu.Lock()
				readBy[string(m.Value)] = append(readBy[string(m.Value)], i)
				mu.Unlock()
			}
		})
	}
	defer func() {
		cancel()
		wg.Wait()
		for _, r := range readers {
			if r != nil {
				r.Close()
			}
		}
	}()
	batch := func(name string) []*kgo.Record {
		var recs []*kgo.Record
		for _, topic := range topics {
			for p := range int32(4) {
				for i := range 5 {
					recs = append(recs, rec(topic, p, fmt.Sprintf("%s %s/%d %d", name, topic, p, i), time.Time{}))
				}
			}
		}
		produceTo(t, b, recs...)
		return recs
	}
	readAll := func(recs []*kgo.Record) {
		t.Helper()
		waitFor(t, "every record read", func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, rc := range recs {
				if len(readBy[string(rc.Value)]) == 0 {
					return false
				}
			}
			return true
		})
	}

	join(0)
	readAll(batch("before"))
	join(1)
	balanced := func() bool {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, a := range assigned {
			if len(a[topicFirst]) == 0 {
				return false
			}
			for _, ps := range a {
				n += len(ps)
			}
		}
		return n == 8
	}
	for deadline := time.Now().Add(30 * time.Second); !balanced(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the group did not settle on two members: %v", assigned)
		}
	}
	mu.Lock()
	for i, a := range assigned {
		first, retry := slices.Sorted(slices.Values(a[topicFirst])), slices.Sorted(slices.Values(a[topicRetry]))
		if !slices.Equal(first, retry) {
			t.Errorf("reader %d has %v of %s and %v of %s", i, first, topicFirst, retry, topicRetry)
		}
	}
	mu.Unlock()

	after := batch("after")
	readAll(after)
	time.Sleep(200 * time.Millisecond) // for a second read, if any
	mu.Lock()
	defer mu.Unlock()
	if revoked[0] != 8 {
		t.Errorf("the first reader was told of %d partitions given up when the second joined, want all 8", revoked[0])
	}
	for p := range 4 {
		var of [2][]int
		for j, topic := range topics {
			for i := range 5 {
				of[j] = append(of[j], readBy[fmt.Sprintf("after %s/%d %d", topic, p, i)]...)
			}
		}
		by := slices.Concat(of[0], of[1])
		slices.Sort(by)
		if len(of[0]) != 5 || len(of[1]) != 5 || len(slices.Compact(by)) != 1 {
			t.Errorf("partition %d: %s read by readers %v, %s by %v; want one reader, once each", p, topicFirst, of[0], topicRetry, of[1])
		}
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("after 30 s: %s", what)
		}
	}
}

// TestARevokedPartitionDropsWhatItHeld: the rebalance callback drops the
// held records and the polled ones of the partitions taken away, and
// resumes them; other partitions keep theirs.
func TestARevokedPartitionDropsWhatItHeld(t *testing.T) {
	b := startWith(t, 3)
	r, err := b.PartitionsReader(topicFirst, map[int]int64{0: kafka.FirstOffset})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	later := time.Now().Add(time.Hour)
	r.held[topicPartition{topicFirst, 0}] = &hold{recs: []*kgo.Record{rec(topicFirst, 0, "h0", later)}, due: later}
	r.held[topicPartition{topicFirst, 1}] = &hold{recs: []*kgo.Record{rec(topicFirst, 1, "h1", later)}, due: later}
	r.buf = []*kgo.Record{rec(topicFirst, 0, "b0", time.Time{}), rec(topicFirst, 2, "b2", time.Time{})}
	r.cl.PauseFetchPartitions(map[string][]int32{topicFirst: {0, 1}})

	r.revoked(context.Background(), r.cl, map[string][]int32{topicFirst: {0, 2}})

	if _, ok := r.held[topicPartition{topicFirst, 0}]; ok {
		t.Error("partition 0 still holds")
	}
	if _, ok := r.held[topicPartition{topicFirst, 1}]; !ok {
		t.Error("partition 1, not revoked, lost its hold")
	}
	if len(r.buf) != 0 {
		t.Errorf("buf keeps %d records of revoked partitions", len(r.buf))
	}
	if paused := r.cl.PauseFetchPartitions(nil); !slices.Equal(paused[topicFirst], []int32{1}) {
		t.Errorf("paused after the revoke: %v, want partition 1 alone", paused)
	}
}

// TestCopyOffsets: a partition the new group has no offset for takes the
// old group's; one it has keeps its own; a second copy changes nothing;
// the new group reads from the copied offset.
func TestCopyOffsets(t *testing.T) {
	b := startWith(t, 2, topicRetry)
	var recs []*kgo.Record
	for p := range int32(2) {
		for i := range 5 {
			recs = append(recs, rec(topicRetry, p, fmt.Sprintf("%d-%d", p, i), time.Time{}))
		}
	}
	produceTo(t, b, recs...)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	// commit reads with a reader of group until it has the messages at
	// the given offsets, and commits them.
	commit := func(group string, at map[int]int64) {
		t.Helper()
		r := b.GroupReader(topicRetry, group)
		defer r.Close()
		for len(at) > 0 {
			m, err := r.FetchMessage(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if off, ok := at[m.Partition]; ok && off == m.Offset {
				if err := r.CommitMessages(ctx, m); err != nil {
					t.Fatal(err)
				}
				delete(at, m.Partition)
			}
		}
	}
	commit("old", map[int]int64{0: 2, 1: 3}) // next offsets 3 and 4
	commit("new", map[int]int64{1: 0})       // next offset 1

	n, err := b.CopyOffsets(ctx, "old", "new", topicRetry)
	if err != nil || n != 1 {
		t.Fatalf("CopyOffsets = %d, %v; want 1 copied", n, err)
	}
	lag, err := b.Lag(ctx, "new", topicRetry)
	if err != nil {
		t.Fatal(err)
	}
	if want := map[int]int64{0: 2, 1: 4}; lag[0] != want[0] || lag[1] != want[1] {
		t.Fatalf("lag of the new group = %v, want %v (offsets 3 and 1)", lag, want)
	}
	if n, err := b.CopyOffsets(ctx, "old", "new", topicRetry); err != nil || n != 0 {
		t.Fatalf("second CopyOffsets = %d, %v; want 0", n, err)
	}
	if n, err := b.CopyOffsets(ctx, "none", "other", topicRetry); err != nil || n != 0 {
		t.Fatalf("CopyOffsets from a group never seen = %d, %v; want 0", n, err)
	}
	if n, err := b.CopyOffsets(ctx, "old", "fresh", topicRetry); err != nil || n != 2 {
		t.Fatalf("CopyOffsets to a group never seen = %d, %v; want 2", n, err)
	}
	if lag, err := b.Lag(ctx, "fresh", topicRetry); err != nil || lag[0] != 2 || lag[1] != 1 {
		t.Fatalf("lag of a group copied into = %v, %v; want 0:2 1:1", lag, err)
	}

	// A group with members refuses the commit: the copy leaves it alone.
	busy := b.GroupReaderOf("busy", []string{topicRetry}, nil)
	if _, err := busy.FetchMessage(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := b.CopyOffsets(ctx, "old", "busy", topicRetry); err != nil || n != 0 {
		t.Fatalf("CopyOffsets to a group with a member = %d, %v; want 0 and no error", n, err)
	}
	busy.Close()

	r := b.GroupReaderOf("new", []string{topicRetry}, nil)
	defer r.Close()
	first := map[int]int64{}
	for len(first) < 2 {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := first[m.Partition]; !ok {
			first[m.Partition] = m.Offset
		}
	}
	if first[0] != 3 || first[1] != 1 {
		t.Fatalf("the new group read from %v, want 0:3 1:1", first)
	}
}

// TestMembershipSharesPartitionsAndHandsThemOver: two members of a group
// hold the topic's partitions between them, none twice; when one leaves,
// the other holds them all, and the leaver's release ran first.
func TestMembershipSharesPartitionsAndHandsThemOver(t *testing.T) {
	b := startWith(t, 4)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var mu sync.Mutex
	var released []int
	m1 := b.Membership("owners", schemas.TopicReplays, func(ps []int) { mu.Lock(); released = append(released, ps...); mu.Unlock() })
	m2 := b.Membership("owners", schemas.TopicReplays, nil)
	ctx1, stop1 := context.WithCancel(ctx)
	done1 := make(chan error, 1)
	go func() { done1 <- m1.Run(ctx1) }()
	done2 := make(chan error, 1)
	go func() { done2 <- m2.Run(ctx) }()
	n, err := b.Partitions(ctx, schemas.TopicReplays)
	if err != nil {
		t.Fatal(err)
	}
	held := func(m *Membership) (out []int) {
		for p := range n {
			if m.Holds(p) {
				out = append(out, p)
			}
		}
		return out
	}
	for len(held(m1)) == 0 || len(held(m2)) == 0 || len(held(m1))+len(held(m2)) != n {
		select {
		case <-ctx.Done():
			t.Fatalf("the two members hold %v and %v of %d partitions", held(m1), held(m2), n)
		case <-time.After(50 * time.Millisecond):
		}
	}
	for _, p := range held(m1) {
		if m2.Holds(p) {
			t.Fatalf("partition %d held by both", p)
		}
	}
	had := held(m1)
	stop1()
	if err := <-done1; err != nil {
		t.Fatal(err)
	}
	for len(held(m2)) != n {
		select {
		case <-ctx.Done():
			t.Fatalf("after the first left, the second holds %v of %d", held(m2), n)
		case <-time.After(50 * time.Millisecond):
		}
	}
	mu.Lock()
	defer mu.Unlock()
	for _, p := range had {
		if !slices.Contains(released, p) {
			t.Fatalf("the leaver released %v, not all of %v", released, had)
		}
	}
	cancel()
	<-done2
}

// TestThePreferredTopicGoesFirstForABoundedTime: records of the preferred
// topic come out before the other topics' polled with them (or come due
// with them), in order per partition, until one of those has waited
// preferFor; then the others go first.
func TestThePreferredTopicGoesFirstForABoundedTime(t *testing.T) {
	b := startWith(t, 2, topicRetry)
	r, err := b.PartitionsReader(topicFirst, map[int]int64{0: kafka.FirstOffset})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	r.due = headerDue
	r.Prefer(topicFirst, 50*time.Millisecond)
	t0 := time.Now()
	fill := func() {
		r.buf = []*kgo.Record{rec(topicFirst, 0, "new-0", time.Time{}), rec(topicFirst, 1, "new-1", time.Time{}), rec(topicFirst, 0, "new-2", time.Time{})}
		r.later = []polled{{rec(topicRetry, 0, "retry-0", time.Time{}), t0}, {rec(topicRetry, 1, "retry-1", time.Time{}), t0}}
	}
	drain := func(now time.Time) []string {
		var got []string
		for {
			m, _, ok := r.next(now)
			if !ok {
				return got
			}
			got = append(got, string(m.Value))
		}
	}
	fill()
	if got, want := drain(t0.Add(10*time.Millisecond)), []string{"new-0", "new-1", "new-2", "retry-0", "retry-1"}; !slices.Equal(got, want) {
		t.Fatalf("within the bound: %v, want %v", got, want)
	}
	fill()
	if got, want := drain(t0.Add(60*time.Millisecond)), []string{"retry-0", "retry-1", "new-0", "new-1", "new-2"}; !slices.Equal(got, want) {
		t.Fatalf("past the bound: %v, want %v", got, want)
	}
	// A held head due 60 ms ago has waited past the bound too.
	r.buf = []*kgo.Record{rec(topicFirst, 0, "new-0", time.Time{})}
	r.held[topicPartition{topicRetry, 0}] = &hold{recs: []*kgo.Record{rec(topicRetry, 0, "due-0", t0)}, due: t0}
	if got, want := drain(t0.Add(60*time.Millisecond)), []string{"due-0", "new-0"}; !slices.Equal(got, want) {
		t.Fatalf("a head due past the bound: %v, want %v", got, want)
	}
	r.buf = []*kgo.Record{rec(topicFirst, 0, "new-0", time.Time{})}
	r.held[topicPartition{topicRetry, 0}] = &hold{recs: []*kgo.Record{rec(topicRetry, 0, "due-0", t0)}, due: t0}
	if got, want := drain(t0.Add(10*time.Millisecond)), []string{"new-0", "due-0"}; !slices.Equal(got, want) {
		t.Fatalf("a head just due: %v, want %v", got, want)
	}
}

// TestAHeldHeadIsAskedAgainWhenItsTimeComes: the due function of a held
// head is asked again when the time it gave comes, and a later answer
// holds it on (the sender parks a job put off for room until its endpoint
// has room, not only until a time); the records behind it wait with it,
// and another partition is not held up.
func TestAHeldHeadIsAskedAgainWhenItsTimeComes(t *testing.T) {
	b := startWith(t, 2, topicRetry)
	past := time.Now().Add(-time.Hour)
	produceTo(t, b,
		rec(topicRetry, 0, "parked", past),
		rec(topicRetry, 0, "behind", past),
		rec(topicRetry, 1, "free", past),
	)
	var asks atomic.Int32
	release := time.Now().Add(time.Second)
	due := func(m kafka.Message) time.Time {
		if string(m.Value) != "parked" {
			return headerDue(m)
		}
		asks.Add(1)
		if now := time.Now(); now.Before(release) {
			return now.Add(100 * time.Millisecond) // no room yet: look again
		}
		return headerDue(m)
	}
	r := b.GroupReaderOf("g", []string{topicRetry}, due)
	defer r.Close()

	got := fetchN(t, r, 3, 30*time.Second)
	if got[0].Value == nil || string(got[0].Value) != "free" || !got[0].at.Before(release) {
		t.Fatalf("first out: %s at %v; want the other partition's record before the parked head is let go (%v)", got[0].Value, got[0].at, release)
	}
	if v := values(got[1:]); !slices.Equal(v, []string{"parked", "behind"}) {
		t.Fatalf("then %v, want the parked head and the record behind it, in order", v)
	}
	if got[1].at.Before(release) {
		t.Fatalf("the parked head came out at %v, before its due function let it go (%v)", got[1].at, release)
	}
	if n := asks.Load(); n < 3 {
		t.Fatalf("the due function of the held head was asked %d times, want it asked again as each time it gave came", n)
	}
}
