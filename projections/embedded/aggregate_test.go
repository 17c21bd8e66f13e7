package embedded

import (
	"math"
	"math/rand/v2"
	"reflect"
	"sort"
	"testing"
)

func TestLatencyBucketsAreOrderedAndNarrow(t *testing.T) {
	prev := -1
	for ms := int64(-5); ms < 1<<maxExp; ms++ {
		i := latencyBucket(ms)
		if i < prev || i >= latencyBuckets {
			t.Fatalf("latencyBucket(%d) = %d after %d; want ordered and below %d", ms, i, prev, latencyBuckets)
		}
		prev = i
		mid := bucketMiddle(i)
		if v := float64(max(ms, 0)); math.Abs(mid-v) > v/64+1e-9 {
			t.Fatalf("latencyBucket(%d) reads as %v: off by more than 1/64", ms, mid)
		}
	}
	if prev != latencyBuckets-1 {
		t.Errorf("the last bucket used is %d; want %d", prev, latencyBuckets-1)
	}
	if got := latencyBucket(math.MaxInt64); got != latencyBuckets-1 {
		t.Errorf("latencyBucket(max) = %d; want the last bucket", got)
	}
}

func TestPercentilesMatchExactOnesWithinBucketError(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	g := newAggregate()
	var values []float64
	for range 100_000 {
		ms := int64(math.Exp(r.NormFloat64()*1.5 + 5)) // log-normal around 150 ms
		g.addAttempt(200, ms, 1)
		values = append(values, float64(ms))
	}
	sort.Float64s(values)
	for _, p := range []float64{0.5, 0.95, 0.99} {
		exact := values[int(math.Ceil(p*float64(len(values))))-1]
		if got := g.percentile(p); math.Abs(got-exact) > exact/64+0.5 {
			t.Errorf("p%v = %v; exact %v", p*100, got, exact)
		}
	}
}

func TestAggregateRoundTripsAndEmptiesOut(t *testing.T) {
	g := newAggregate()
	g.move("", "retrying")
	g.move("retrying", "succeeded")
	g.move("", "failed")
	g.addAttempt(503, 1200, 1)
	g.addAttempt(0, 30_000, 1)
	g.addAttempt(204, 3, 1)
	back := newAggregate()
	if err := decodeInto(back, g.encode()); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back, g) {
		t.Fatalf("decoded %+v; want %+v", back, g)
	}
	g.move("succeeded", "")
	g.move("failed", "")
	g.addAttempt(503, 1200, -1)
	g.addAttempt(0, 30_000, -1)
	g.addAttempt(204, 3, -1)
	if !g.empty() {
		t.Errorf("aggregate with everything taken out is not empty: %+v", g)
	}
}

func FuzzDecodeAggregate(f *testing.F) {
	g := newAggregate()
	g.move("", "failed")
	g.addAttempt(500, 77, 1)
	f.Add(g.encode())
	f.Add([]byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f})
	f.Fuzz(func(t *testing.T, b []byte) {
		_ = decodeInto(newAggregate(), b) // must not panic or loop for long
	})
}
