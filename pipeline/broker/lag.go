package broker

import (
	"context"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"

	"github.com/hookline/hookline/schemas"
)

// Consumer names a consumer group and the topic it reads.
type Consumer struct {
	Group, Topic string
}

// LagCollector reports, when scraped, how far each consumer group is
// behind the end of its topic, per partition, and how many retries wait on
// the retry topics. It asks the broker at scrape time, so it costs nothing
// between scrapes and is right whichever process commits.
type LagCollector struct {
	b         *Broker
	consumers []Consumer
	lag       *prometheus.Desc
	waiting   *prometheus.Desc
}

// NewLagCollector reports the lag of the given consumers.
func NewLagCollector(b *Broker, consumers []Consumer) *LagCollector {
	return &LagCollector{
		b: b, consumers: consumers,
		lag: prometheus.NewDesc("hookline_consumer_lag",
			"Messages between a consumer group's committed offset and the end of the partition.",
			[]string{"group", "topic", "partition"}, nil),
		waiting: prometheus.NewDesc("hookline_retries_waiting",
			"Jobs waiting on the retry topics and hookline.overflow (the lag of the sender's consumers of them).", nil, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *LagCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.lag
	ch <- c.waiting
}

// Collect implements prometheus.Collector. A consumer whose offsets cannot
// be read within the scrape's budget is left out of this scrape.
func (c *LagCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	var waiting int64
	for _, con := range c.consumers {
		lags, err := c.b.Lag(ctx, con.Group, con.Topic)
		if err != nil {
			continue
		}
		for p, lag := range lags {
			ch <- prometheus.MustNewConstMetric(c.lag, prometheus.GaugeValue, float64(lag), con.Group, con.Topic, strconv.Itoa(p))
			if strings.HasPrefix(con.Topic, schemas.TopicRetryPrefix) || con.Topic == schemas.TopicOverflow {
				waiting += lag
			}
		}
	}
	ch <- prometheus.MustNewConstMetric(c.waiting, prometheus.GaugeValue, float64(waiting))
}

// Lag returns, per partition, the messages between a group's committed
// offset and the end of the topic.
func (b *Broker) Lag(ctx context.Context, group, topic string) (map[int]int64, error) {
	end, err := b.EndOffsets(ctx, topic)
	if err != nil {
		return nil, err
	}
	parts := make([]int, 0, len(end))
	for p := range end {
		parts = append(parts, p)
	}
	resp, err := b.client.OffsetFetch(ctx, &kafka.OffsetFetchRequest{GroupID: group, Topics: map[string][]int{topic: parts}})
	if err != nil {
		return nil, err
	}
	committed := map[int]int64{}
	for _, po := range resp.Topics[topic] {
		committed[po.Partition] = po.CommittedOffset
	}
	out := make(map[int]int64, len(end))
	for p, e := range end {
		c, ok := committed[p]
		if !ok || c < 0 {
			c = 0
		}
		out[p] = max(e-c, 0)
	}
	return out, nil
}
