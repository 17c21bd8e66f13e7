package embedded

import (
	"encoding/binary"
	"errors"
	"math"
	"math/bits"

	"github.com/hookline/hookline/projections"
)

// Latency histogram: log-linear buckets, exact below linearMS and then
// 1<<subBits buckets per power of two, up to 1<<maxExp ms (about 35 min;
// anything longer counts in the last bucket). A percentile is read as the
// middle of its bucket, so it is exact below 64 ms and within
// 1/(2<<subBits), about 1.6 %, above: 1..100 ms gives p95 94.5 for 95.
const (
	subBits        = 5
	linearMS       = 2 << subBits // 64
	maxExp         = 21
	latencyBuckets = linearMS + (maxExp-subBits-1)<<subBits // 544
)

// latencyBucket is the histogram bucket of a duration.
func latencyBucket(ms int64) int {
	switch {
	case ms < linearMS:
		return int(max(ms, 0))
	case ms >= 1<<maxExp:
		ms = 1<<maxExp - 1
	}
	e := bits.Len64(uint64(ms)) - 1 // at least subBits+1
	sub := int(ms>>(e-subBits)) & (1<<subBits - 1)
	return linearMS + (e-subBits-1)<<subBits + sub
}

// bucketMiddle is the value a percentile falling in bucket i reads as.
func bucketMiddle(i int) float64 {
	if i < linearMS {
		return float64(i)
	}
	j := i - linearMS
	shift := j>>subBits + 1 // e - subBits
	lo := int64(1<<subBits+j&(1<<subBits-1)) << shift
	return float64(lo) + float64(int64(1)<<shift-1)/2
}

// Status classes by index; latency counts every class but classError.
var classNames = [...]string{projections.ClassError, "2xx", "3xx", "4xx", "5xx"}

const classError = 0

// classIndex is the index in classNames of a status code, or -1 for none.
func classIndex(status int) int {
	switch {
	case status == 0:
		return classError
	case status >= 200 && status < 600:
		return status/100 - 1
	}
	return -1
}

// aggregate is the stats of one webhook's deliveries created in one hour.
// Counts are kept exact by moving deliveries between states and by
// subtracting an attempt's contribution when it is replaced or dropped.
type aggregate struct {
	states  map[string]int64
	classes [len(classNames)]int64
	latency [latencyBuckets]int64
}

func newAggregate() *aggregate { return &aggregate{states: map[string]int64{}} }

// addAttempt counts an attempt in (sign 1) or out (sign -1).
func (g *aggregate) addAttempt(status int, durationMS int64, sign int64) {
	c := classIndex(status)
	if c >= 0 {
		g.classes[c] += sign
	}
	if status != 0 {
		g.latency[latencyBucket(durationMS)] += sign
	}
}

// move takes a delivery out of state from (unless empty) and into state to
// (unless empty).
func (g *aggregate) move(from, to string) {
	if from != "" {
		if g.states[from]--; g.states[from] == 0 {
			delete(g.states, from)
		}
	}
	if to != "" {
		g.states[to]++
	}
}

func (g *aggregate) empty() bool {
	return len(g.states) == 0 && g.classes == [len(classNames)]int64{} && g.latency == [latencyBuckets]int64{}
}

// percentile is the nearest-rank p-quantile of the latency histogram, or 0
// when it is empty.
func (g *aggregate) percentile(p float64) float64 {
	var total int64
	for _, n := range g.latency {
		total += n
	}
	if total <= 0 {
		return 0
	}
	rank := max(int64(math.Ceil(p*float64(total))), 1)
	var seen int64
	for i, n := range g.latency {
		if seen += n; seen >= rank {
			return bucketMiddle(i)
		}
	}
	return bucketMiddle(latencyBuckets - 1)
}

// encode writes states, classes and the non-empty latency buckets as
// varints: a bucket holds a few dozen bytes, not the 4 KiB of the array.
func (g *aggregate) encode() []byte {
	b := binary.AppendUvarint(nil, uint64(len(g.states)))
	for s, n := range g.states {
		b = binary.AppendUvarint(b, uint64(len(s)))
		b = append(b, s...)
		b = binary.AppendVarint(b, n)
	}
	for _, n := range g.classes {
		b = binary.AppendVarint(b, n)
	}
	used := 0
	for _, n := range g.latency {
		if n != 0 {
			used++
		}
	}
	b = binary.AppendUvarint(b, uint64(used))
	for i, n := range g.latency {
		if n != 0 {
			b = binary.AppendUvarint(b, uint64(i))
			b = binary.AppendVarint(b, n)
		}
	}
	return b
}

var errCorrupt = errors.New("embedded: corrupt stats aggregate")

// decodeInto adds an encoded aggregate to g.
func decodeInto(g *aggregate, v []byte) error {
	r := reader{b: v}
	for range r.count() {
		s := string(r.bytes(r.count()))
		g.states[s] += r.varint()
	}
	for i := range g.classes {
		g.classes[i] += r.varint()
	}
	for range r.count() {
		i := r.uvarint()
		n := r.varint()
		if i >= latencyBuckets {
			return errCorrupt
		}
		g.latency[i] += n
	}
	if r.bad || len(r.b) != 0 {
		return errCorrupt
	}
	return nil
}

// reader reads varints and remembers the first failure, so that decoding
// reads straight and checks once.
type reader struct {
	b   []byte
	bad bool
}

func (r *reader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.bad, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

// count reads how many items follow; each takes a byte at least, so a
// larger count is corrupt (and must not drive a long loop).
func (r *reader) count() uint64 {
	v := r.uvarint()
	if v > uint64(len(r.b)) {
		r.bad, r.b = true, nil
		return 0
	}
	return v
}

func (r *reader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.bad, r.b = true, nil
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *reader) bytes(n uint64) []byte {
	if n > uint64(len(r.b)) {
		r.bad, r.b = true, nil
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}
