package sender

import (
	"cmp"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hookline/hookline/schemas"
)

// DefaultSchedule is the retry schedule of SPEC §6.
const DefaultSchedule = "10s,1m,5m,30m,2h,5h,10h"

// Schedule is the delay before each retry: the first retry waits
// Schedule[0], the second Schedule[1], and every later one the last.
// Each distinct delay is a retry tier with a topic of its own.
type Schedule []time.Duration

// ParseSchedule reads a comma-separated list of growing delays.
func ParseSchedule(s string) (Schedule, error) {
	var out Schedule
	for _, part := range strings.Split(s, ",") {
		d, err := time.ParseDuration(strings.TrimSpace(part))
		if err != nil {
			return nil, fmt.Errorf("retry schedule: %q is not a duration", part)
		}
		if d < time.Second || d > 7*24*time.Hour {
			return nil, fmt.Errorf("retry schedule: %s is outside 1s to 168h", d)
		}
		if len(out) > 0 && d <= out[len(out)-1] {
			return nil, fmt.Errorf("retry schedule: delays must grow, %s follows %s", d, out[len(out)-1])
		}
		out = append(out, d)
	}
	if len(out) > 20 {
		return nil, errors.New("retry schedule: at most 20 delays")
	}
	return out, nil
}

// MustSchedule parses a schedule known to be valid.
func MustSchedule(s string) Schedule {
	sch, err := ParseSchedule(s)
	if err != nil {
		panic(err)
	}
	return sch
}

// Topic is the retry topic of tier i, e.g. hookline.retry.5m.
func (s Schedule) Topic(i int) string {
	return schemas.TopicRetryPrefix + shortDuration(s[i])
}

// Topics lists every retry topic.
func (s Schedule) Topics() []string {
	out := make([]string, len(s))
	for i := range s {
		out[i] = s.Topic(i)
	}
	return out
}

// shortDuration formats 1m0s as 1m and 2h30m0s as 2h30m.
func shortDuration(d time.Duration) string {
	out := d.String()
	if strings.HasSuffix(out, "m0s") {
		out = strings.TrimSuffix(out, "0s")
	}
	if strings.HasSuffix(out, "h0m") {
		out = strings.TrimSuffix(out, "0m")
	}
	return out
}

// rung is a delay topic: a record written there is due exactly delay
// after it was written, so along each partition due times grow with the
// offsets and the reader, holding a partition on its head until due, never
// holds a record due earlier.
type rung struct {
	topic string
	delay time.Duration
}

// ladder is every delay topic the sender writes, shortest first: one per
// retry tier, and hookline.overflow, whose delay is --max-queue-wait.
type ladder []rung

func newLadder(s Schedule, overflow time.Duration) ladder {
	l := ladder{{topic: schemas.TopicOverflow, delay: overflow}}
	for i := range s {
		l = append(l, rung{topic: s.Topic(i), delay: s[i]})
	}
	slices.SortStableFunc(l, func(a, b rung) int { return cmp.Compare(a.delay, b.delay) })
	return l
}

// below is the longest rung whose delay is at most wait: a wait goes
// there and, back early, on from a shorter one. False when wait is shorter
// than every rung (it is waited in memory).
func (l ladder) below(wait time.Duration) (rung, bool) {
	var out rung
	found := false
	for _, r := range l {
		if r.delay <= wait {
			out, found = r, true
		}
	}
	return out, found
}

// atLeast is the shortest rung whose delay is at least wait; false when
// every rung is shorter.
func (l ladder) atLeast(wait time.Duration) (rung, bool) {
	for _, r := range l {
		if r.delay >= wait {
			return r, true
		}
	}
	return rung{}, false
}

// Policy decides when a job is tried again.
type Policy struct {
	Schedule Schedule
	// Jitter adds up to this fraction (0 to 1) to each delay, so that jobs
	// that failed together do not come back together. 0 is none; the
	// stage uses 0.1. It is added, never taken off: a retry never comes
	// back before its schedule's delay, and each record still waits its
	// topic's exact delay (the rest of the wait is taken on shorter rungs
	// and in memory).
	Jitter float64
	// Rand returns a number in [0, 1); nil is math/rand/v2.
	Rand func() float64
}

// Delay is how long a job waits after its nth failure (n >= 1), honouring
// a Retry-After of the endpoint within the schedule's bounds: it never
// waits less than Retry-After asks (up to the schedule's last delay), nor
// less than the schedule's nth delay.
func (p Policy) Delay(n int, retryAfter time.Duration) time.Duration {
	i := min(max(n, 1)-1, len(p.Schedule)-1)
	d := p.Schedule[i]
	rnd := p.Rand
	if rnd == nil {
		rnd = rand.Float64
	}
	d += time.Duration(float64(d) * min(max(p.Jitter, 0), 1) * rnd())
	if retryAfter > d {
		d = min(retryAfter, max(p.Schedule[len(p.Schedule)-1], d))
	}
	return d
}

// RetryAfter reads a Retry-After header value, in seconds or as an HTTP
// date, capped at 30 days. It returns 0 when there is none or it cannot be
// read.
func RetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	const maxWait = 30 * 24 * time.Hour
	secs, err := strconv.ParseInt(v, 10, 64)
	switch {
	case err == nil && secs <= 0:
		return 0
	case err == nil:
		return min(time.Duration(min(secs, int64(maxWait/time.Second)))*time.Second, maxWait)
	case errors.Is(err, strconv.ErrRange) && v[0] != '-':
		return maxWait // more digits than int64 holds: as long as we wait
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return min(t.Sub(now), maxWait)
	}
	return 0
}
