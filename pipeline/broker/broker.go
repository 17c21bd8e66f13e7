package broker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/segmentio/kafka-go"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/hookline/hookline/schemas"
)

// Config says which Kafka to use.
type Config struct {
	// Brokers of an existing cluster. Empty starts the embedded broker.
	Brokers []string
	// DataDir holds the embedded broker's data (in DataDir/kafka). Required
	// when Brokers is empty.
	DataDir string
	// Partitions of each topic created at start. Default 6. Topics that
	// exist keep their partition count.
	Partitions int
	// RetentionDays sets retention.ms on the events, deliveries, attempts,
	// retry and dead topics (subscriptions is compacted, kept forever).
	// Default 30.
	RetentionDays int
	// RetryTopics are the sender's delayed retry topics, one per tier.
	RetryTopics []string
	// MaxMessageBytes caps every message Hookline writes. Default 0: the
	// smallest max.message.bytes of Hookline's topics as the broker reports
	// it, less 1 KiB for the batch header, or DefaultMaxMessageBytes when
	// the broker does not say.
	MaxMessageBytes int
	// Addr is the embedded broker's listen address (host:port), so that
	// processes started later, or the broker after a restart, find it at
	// the same place. Empty: a random port on 127.0.0.1.
	Addr string
}

// WithDefaults returns the config with every unset field at its default.
func (c Config) WithDefaults() Config {
	c.Partitions = cmp.Or(c.Partitions, 6)
	c.RetentionDays = cmp.Or(c.RetentionDays, 30)
	return c
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	c = c.WithDefaults()
	if len(c.Brokers) == 0 && c.DataDir == "" {
		return errors.New("broker: a data dir is required for the embedded broker")
	}
	if c.Partitions < 1 || c.Partitions > 1000 {
		return fmt.Errorf("broker: partitions must be 1 to 1000, got %d", c.Partitions)
	}
	if c.RetentionDays < 1 {
		return fmt.Errorf("broker: retention days must be at least 1, got %d", c.RetentionDays)
	}
	if c.Addr != "" {
		if len(c.Brokers) > 0 {
			return errors.New("broker: an address is for the embedded broker; it cannot go with brokers to connect to")
		}
		if _, port, err := net.SplitHostPort(c.Addr); err != nil || port == "" {
			return fmt.Errorf("broker: address %q is not host:port", c.Addr)
		}
	}
	if c.MaxMessageBytes != 0 && (c.MaxMessageBytes < minMessageBytes || c.MaxMessageBytes > 100<<20) {
		return fmt.Errorf("broker: max message bytes must be %d to %d, got %d", minMessageBytes, 100<<20, c.MaxMessageBytes)
	}
	return nil
}

// Broker is a connection to a Kafka cluster, embedded or not.
type Broker struct {
	cfg       Config
	addrs     []string
	cluster   *kfake.Cluster
	transport *kafka.Transport
	client    *kafka.Client
	log       *slog.Logger
	maxBytes  int // the size limit of one message
	// tooLarge counts messages replaced for being over the limit, by the
	// topic they were meant for.
	tooLarge *prometheus.CounterVec
}

// minMessageBytes is the smallest size limit that leaves room for a job.
const minMessageBytes = 4096

// Start connects to the configured cluster, or starts the embedded one, and
// creates the topics.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (*Broker, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.WithDefaults()
	b := &Broker{cfg: cfg, addrs: cfg.Brokers, log: log,
		tooLarge: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "hookline_too_large_total",
			Help: "Messages over the broker's size limit, replaced (a dead letter, an attempt without its bodies) instead of written."},
			[]string{"topic"})}
	if len(b.addrs) == 0 {
		cluster, err := StartEmbedded(cfg)
		if err != nil {
			return nil, err
		}
		b.cluster = cluster
		b.addrs = cluster.ListenAddrs()
		log.Info("embedded kafka started", "addrs", b.addrs, "dir", filepath.Join(cfg.DataDir, "kafka"))
	}
	b.transport = &kafka.Transport{DialTimeout: 5 * time.Second, IdleTimeout: 30 * time.Second}
	b.client = &kafka.Client{Addr: kafka.TCP(b.addrs...), Transport: b.transport, Timeout: 10 * time.Second}
	if err := b.createTopics(ctx); err != nil {
		b.Close()
		return nil, err
	}
	b.maxBytes = cfg.MaxMessageBytes
	if b.maxBytes == 0 {
		b.maxBytes = b.brokerMaxBytes(ctx)
	}
	log.Debug("message size limit", "bytes", b.maxBytes)
	return b, nil
}

// StartEmbedded starts the embedded broker (kfake) on disk in
// cfg.DataDir/kafka, at cfg.Addr or a random loopback port. Start uses it;
// `hookline broker` runs it alone, for processes on one machine to share.
func StartEmbedded(cfg Config) (*kfake.Cluster, error) {
	cfg = cfg.WithDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts := []kfake.Opt{
		kfake.DataDir(filepath.Join(cfg.DataDir, "kafka")),
		kfake.NumBrokers(1),
		kfake.DefaultNumPartitions(cfg.Partitions),
	}
	if cfg.Addr != "" {
		host, port, _ := net.SplitHostPort(cfg.Addr)
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("broker: address %q: port must be 1 to 65535", cfg.Addr)
		}
		opts = append(opts, kfake.Ports(n), kfake.ListenFn(func(network, _ string) (net.Listener, error) {
			return net.Listen(network, net.JoinHostPort(host, port))
		}))
	}
	cluster, err := kfake.NewCluster(opts...)
	if err != nil {
		return nil, fmt.Errorf("broker: start embedded kafka: %w", err)
	}
	return cluster, nil
}

// brokerMaxBytes is the smallest max.message.bytes of Hookline's topics,
// less room for a batch header, or DefaultMaxMessageBytes if the broker
// does not say.
func (b *Broker) brokerMaxBytes(ctx context.Context) int {
	var resources []kafka.DescribeConfigRequestResource
	for _, t := range b.Topics() {
		resources = append(resources, kafka.DescribeConfigRequestResource{
			ResourceType: kafka.ResourceTypeTopic, ResourceName: t.Topic, ConfigNames: []string{"max.message.bytes"}})
	}
	resp, err := b.client.DescribeConfigs(ctx, &kafka.DescribeConfigsRequest{Resources: resources})
	if err != nil {
		b.log.Warn("broker did not tell its message size limit; using the default", "err", err, "bytes", DefaultMaxMessageBytes)
		return DefaultMaxMessageBytes
	}
	limit := 0
	for _, r := range resp.Resources {
		for _, e := range r.ConfigEntries {
			if v, err := strconv.Atoi(e.ConfigValue); err == nil && e.ConfigName == "max.message.bytes" && (limit == 0 || v < limit) {
				limit = v
			}
		}
	}
	if limit-1024 < minMessageBytes {
		return DefaultMaxMessageBytes
	}
	return limit - 1024
}

// Collectors are the broker's metrics, to register once per process.
func (b *Broker) Collectors() []prometheus.Collector { return []prometheus.Collector{b.tooLarge} }

// MaxMessageBytes is the size limit of one message.
func (b *Broker) MaxMessageBytes() int { return b.maxBytes }

// Addrs are the bootstrap addresses of the cluster.
func (b *Broker) Addrs() []string { return b.addrs }

// Topics lists every topic Hookline uses with its configuration.
func (b *Broker) Topics() []kafka.TopicConfig {
	retention := strconv.FormatInt(int64(b.cfg.RetentionDays)*24*int64(time.Hour/time.Millisecond), 10)
	topic := func(name string, entries ...kafka.ConfigEntry) kafka.TopicConfig {
		return kafka.TopicConfig{Topic: name, NumPartitions: b.cfg.Partitions, ReplicationFactor: -1, ConfigEntries: entries}
	}
	keep := kafka.ConfigEntry{ConfigName: "retention.ms", ConfigValue: retention}
	topics := []kafka.TopicConfig{
		topic(schemas.TopicEvents, keep),
		topic(schemas.TopicSubscriptions, kafka.ConfigEntry{ConfigName: "cleanup.policy", ConfigValue: "compact"}),
		topic(schemas.TopicReplays, kafka.ConfigEntry{ConfigName: "cleanup.policy", ConfigValue: "compact"}),
		topic(schemas.TopicEndpoints, kafka.ConfigEntry{ConfigName: "cleanup.policy", ConfigValue: "compact"}),
		topic(schemas.TopicIdempotency, kafka.ConfigEntry{ConfigName: "cleanup.policy", ConfigValue: "compact"}),
		topic(schemas.TopicDeliveries, keep),
		topic(schemas.TopicOverflow, keep),
		topic(schemas.TopicAttempts, keep),
		topic(schemas.TopicDead, keep),
	}
	for _, name := range b.cfg.RetryTopics {
		topics = append(topics, topic(name, keep))
	}
	return topics
}

func (b *Broker) createTopics(ctx context.Context) error {
	topics := b.Topics()
	var last error
	// A broker that just started can refuse the first requests; retry for
	// a bounded time.
	for try := 0; try < 20; try++ {
		resp, err := b.client.CreateTopics(ctx, &kafka.CreateTopicsRequest{Topics: topics})
		if err == nil {
			last = nil
			for name, terr := range resp.Errors {
				if terr != nil && !errors.Is(terr, kafka.TopicAlreadyExists) {
					last = fmt.Errorf("broker: create topic %s: %w", name, terr)
				}
			}
			if last == nil {
				return nil
			}
		} else {
			last = fmt.Errorf("broker: create topics: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return last
}

// Partitions returns the partition count of a topic.
func (b *Broker) Partitions(ctx context.Context, topic string) (int, error) {
	resp, err := b.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{topic}})
	if err != nil {
		return 0, fmt.Errorf("broker: metadata of %s: %w", topic, err)
	}
	for _, t := range resp.Topics {
		if t.Name == topic {
			if t.Error != nil {
				return 0, fmt.Errorf("broker: metadata of %s: %w", topic, t.Error)
			}
			return len(t.Partitions), nil
		}
	}
	return 0, fmt.Errorf("broker: topic %s not found", topic)
}

// EndOffsets returns, per partition, the offset the next message will get.
func (b *Broker) EndOffsets(ctx context.Context, topic string) (map[int]int64, error) {
	return b.endOffsets(ctx, topic, kafka.ReadUncommitted)
}

// StableOffsets returns, per partition, the last stable offset: the end a
// read_committed reader can reach now, before the first record of a
// transaction still open (the end offset when none is).
func (b *Broker) StableOffsets(ctx context.Context, topic string) (map[int]int64, error) {
	return b.endOffsets(ctx, topic, kafka.ReadCommitted)
}

func (b *Broker) endOffsets(ctx context.Context, topic string, level kafka.IsolationLevel) (map[int]int64, error) {
	n, err := b.Partitions(ctx, topic)
	if err != nil {
		return nil, err
	}
	reqs := make([]kafka.OffsetRequest, n)
	for p := range reqs {
		reqs[p] = kafka.LastOffsetOf(p)
	}
	resp, err := b.client.ListOffsets(ctx, &kafka.ListOffsetsRequest{Topics: map[string][]kafka.OffsetRequest{topic: reqs}, IsolationLevel: level})
	if err != nil {
		return nil, fmt.Errorf("broker: list offsets of %s: %w", topic, err)
	}
	out := make(map[int]int64, n)
	for _, po := range resp.Topics[topic] {
		if po.Error != nil {
			return nil, fmt.Errorf("broker: list offsets of %s/%d: %w", topic, po.Partition, po.Error)
		}
		out[po.Partition] = po.LastOffset
	}
	return out, nil
}

// Compact runs log compaction now on the embedded broker's compacted
// topics (tests: what a process folds after a restart on a compacted
// log); nothing on an external cluster.
func (b *Broker) Compact() {
	if b.cluster != nil {
		b.cluster.Compact()
	}
}

// Ping reports whether the cluster answers.
func (b *Broker) Ping(ctx context.Context) error {
	_, err := b.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{schemas.TopicEvents}})
	return err
}

// Close releases connections and stops the embedded broker, which saves
// its state to the data dir.
func (b *Broker) Close() {
	if b.transport != nil {
		b.transport.CloseIdleConnections()
	}
	if b.cluster != nil {
		b.cluster.Close()
		b.cluster = nil
	}
}
