package sender

import (
	"time"

	"github.com/platinummonkey/go-concurrency-limits/limit"
)

// concurrency is an endpoint's adaptive limit on requests in flight, from
// 1 up to the webhook's max_concurrency. It is TCP Vegas as Netflix's
// concurrency-limits applies it to services (the Go port,
// platinummonkey/go-concurrency-limits): the limit grows while an
// endpoint's latency stays near the lowest seen (no queueing at the
// endpoint) and shrinks when latency climbs, and by a tenth on every
// request that failed in a way that says the endpoint is overloaded (a
// timeout, a refused or reset connection, a 5xx, a 429). It is not safe
// for concurrent use: the endpoint's lock guards it.
type concurrency struct {
	vegas *limit.VegasLimit
	max   int
}

// dropFactor is what a failed request leaves of the limit.
const dropFactor = 0.9

func newConcurrency(initial, maxLimit int) *concurrency {
	initial = max(1, min(initial, maxLimit))
	v := limit.NewVegasLimitWithRegistry("endpoint", initial, nil, maxLimit, 1.0,
		nil, nil, nil, nil, func(l float64) float64 { return l * dropFactor }, -1, nil, nil)
	return &concurrency{vegas: v, max: maxLimit}
}

// current is the number of requests the endpoint may have in flight now.
func (c *concurrency) current() int { return max(1, min(c.max, c.vegas.EstimatedLimit())) }

// sample feeds one finished request: when it started, how long it took,
// how many were in flight when it started, and whether it failed in a way
// that asks for fewer requests.
func (c *concurrency) sample(start time.Time, rtt time.Duration, inflight int, drop bool) {
	c.vegas.OnSample(start.UnixNano(), max(rtt, time.Microsecond).Nanoseconds(), inflight, drop)
}

// resize follows a change of the webhook's max_concurrency, keeping what
// was learned below it.
func (c *concurrency) resize(maxLimit int) *concurrency {
	if maxLimit == c.max {
		return c
	}
	return newConcurrency(c.current(), maxLimit)
}
