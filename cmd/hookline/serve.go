package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/hookline/hookline/delivery"
	"github.com/hookline/hookline/sealing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/hookline/hookline/api"
	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/pipeline/matcher"
	"github.com/hookline/hookline/pipeline/projector"
	"github.com/hookline/hookline/pipeline/replay"
	"github.com/hookline/hookline/pipeline/sender"
	"github.com/hookline/hookline/pipeline/subscriptions"
	"github.com/hookline/hookline/projections/clickhouse"
	"github.com/hookline/hookline/projections/embedded"
	"github.com/hookline/hookline/schemas"
)

// Stage names for --stages.
var allStages = []string{"api", "matcher", "sender", "projector"}

type serveConfig struct {
	dataDir       string
	httpAddr      string
	kafkaBrokers  string
	kafkaAddr     string
	clickhouseDSN string
	secretsKey    string
	apiTokens     string
	partitions    int
	retentionDays int
	stages        string
	drainTimeout  time.Duration
	logLevel      string

	retrySchedule       string
	allowPrivate        bool
	breakerFailures     uint
	breakerCooldown     time.Duration
	breakerProbes       uint
	endpointConcurrency int
	maxQueueWait        time.Duration
	maxQueueBytes       int64
	memoryLimit         int64
	disableAfter        time.Duration
	maxInFlight         int
	debugAddr           string
	metricsAddr         string
	metricsToken        string
	dedupeWindow        time.Duration
	maxResponseBody     int
	maxMessageBytes     int
}

func serveFlags(fs *flag.FlagSet) func(ctx context.Context, stdout, stderr io.Writer) error {
	c := &serveConfig{}
	fs.StringVar(&c.dataDir, "data-dir", "./data", "directory of the embedded broker and attempts store")
	fs.StringVar(&c.httpAddr, "http-addr", "127.0.0.1:8080", "address of the HTTP API")
	fs.StringVar(&c.kafkaBrokers, "kafka-brokers", "", "comma-separated Kafka bootstrap brokers; empty starts the embedded broker in --data-dir")
	fs.StringVar(&c.kafkaAddr, "kafka-addr", "", "address of the embedded broker (host:port; empty: a random loopback port), so that other processes can reach it at a known place")
	fs.StringVar(&c.secretsKey, "secrets-key", "", "keys that seal webhook secrets and credentials on hookline.subscriptions: comma-separated base64 of 32 bytes, the sealing one first (older ones still open); empty uses <data-dir>/secrets.key, made on first start; required with --kafka-brokers, the same for every process")
	fs.StringVar(&c.clickhouseDSN, "clickhouse-dsn", "", "ClickHouse DSN for the attempts store (clickhouse://host:9000/db); empty uses the embedded store in --data-dir")
	fs.StringVar(&c.apiTokens, "api-tokens", "", "API bearer tokens as token:tenant,...; empty serves the single tenant \"default\" on loopback only")
	fs.IntVar(&c.partitions, "partitions", 6, "partitions of each topic created at start (existing topics keep theirs)")
	fs.IntVar(&c.retentionDays, "retention-days", 30, "days kept: older attempts are dropped from the store (by whole days) and from the topics")
	fs.StringVar(&c.stages, "stages", "all", "stages to run: all, or a comma-separated subset of "+strings.Join(allStages, ","))
	fs.DurationVar(&c.drainTimeout, "drain-timeout", 30*time.Second, "on SIGTERM, how long in-flight work may take to finish")
	fs.StringVar(&c.logLevel, "log-level", "info", "log level: debug, info, warn, error")
	fs.StringVar(&c.retrySchedule, "retry-schedule", sender.DefaultSchedule, "comma-separated delays before each retry; each delay is a retry topic hookline.retry.<delay>")
	fs.BoolVar(&c.allowPrivate, "allow-private-targets", false, "allow deliveries to loopback, private and link-local addresses (refused by default, checked at connect time)")
	fs.UintVar(&c.breakerFailures, "breaker-failures", 5, "consecutive failed attempts (timeouts, connection errors, 408, 5xx) that open an endpoint's circuit")
	fs.DurationVar(&c.breakerCooldown, "breaker-cooldown", 30*time.Second, "how long an open circuit waits before half-open probes")
	fs.UintVar(&c.breakerProbes, "breaker-probes", 1, "requests a half-open circuit lets through; as many successes close it")
	fs.IntVar(&c.endpointConcurrency, "endpoint-concurrency", 4, "requests at once an endpoint starts with; it adapts from 1 up to the webhook's max_concurrency (one resource's events always go one after another)")
	fs.DurationVar(&c.disableAfter, "disable-after", 5*24*time.Hour, "disable a webhook whose every delivery has failed for this long (disabled_reason says so; a hookline.webhook_disabled event follows)")
	fs.DurationVar(&c.maxQueueWait, "max-queue-wait", 5*time.Second, "how long an endpoint's queue in memory may take to drain at the pace it keeps (1s to 1h); beyond it jobs wait on hookline.overflow, which gives them back after this long; a crash sends again at most about twice this of each endpoint's work")
	fs.Int64Var(&c.maxQueueBytes, "max-queue-bytes", 128<<20, "bytes of jobs a sender holds in memory, all endpoints together; beyond it an endpoint over its even share waits on hookline.overflow")
	fs.Int64Var(&c.memoryLimit, "memory-limit", 0, "soft limit in bytes on serve's memory (Go's GOMEMLIMIT, which wins when set): the garbage collector works harder near it; 0 sizes it as twice --max-queue-bytes plus 144 MiB (400 MiB by default), -1 sets none. Serve also collects at three times the live heap (GOGC 200) unless GOGC is set")
	fs.IntVar(&c.maxInFlight, "max-in-flight", 200000, "jobs a sender holds at once, counted, a backstop under --max-queue-bytes; beyond it fetching waits")
	fs.IntVar(&c.maxResponseBody, "max-response-body", 64<<10, "bytes of each endpoint's response body kept in the attempt log")
	fs.IntVar(&c.maxMessageBytes, "max-message-bytes", 0, "largest message Hookline writes to Kafka; 0 asks the broker (its topics' max.message.bytes, less 1 KiB), or 1000000 when it does not say")
	fs.StringVar(&c.metricsAddr, "metrics-addr", "", "address to serve /metrics on, without a token (for Prometheus, on an internal address); empty serves it on --http-addr, behind --metrics-token when --api-tokens are set")
	fs.DurationVar(&c.dedupeWindow, "dedupe-window", api.DefaultDedupeWindow, "how long the API remembers the event ids it published, to publish each once (1s to 168h)")
	fs.StringVar(&c.metricsToken, "metrics-token", "", "bearer token that reads /metrics on --http-addr when --api-tokens are set (its series name every tenant's webhooks: a tenant's token gets 403); empty: only --metrics-addr serves them")
	fs.StringVar(&c.debugAddr, "debug-addr", "", "loopback address for Go's pprof profiles (/debug/pprof/); empty serves none")
	return func(ctx context.Context, stdout, stderr io.Writer) error { return serve(ctx, c, stdout, stderr) }
}

func (c *serveConfig) validate() (stages map[string]bool, tokens map[string]string, err error) {
	if c.kafkaAddr != "" && c.kafkaBrokers != "" {
		return nil, nil, errors.New("--kafka-addr is the embedded broker's address: it cannot go with --kafka-brokers (use one or the other)")
	}
	if c.kafkaBrokers != "" && strings.TrimSpace(c.secretsKey) == "" {
		return nil, nil, errors.New("--secrets-key (HOOKLINE_SECRETS_KEY) is required with --kafka-brokers: every process on the same broker must seal and open webhook secrets with the same key, or the senders cannot read the webhooks the API writes; make one with `openssl rand -base64 32` and give the same one to every process")
	}
	stages = map[string]bool{}
	for _, s := range strings.Split(c.stages, ",") {
		s = strings.TrimSpace(s)
		switch {
		case s == "all":
			for _, a := range allStages {
				stages[a] = true
			}
		case contains(allStages, s):
			stages[s] = true
		default:
			return nil, nil, fmt.Errorf("--stages: unknown stage %q (want all or %s)", s, strings.Join(allStages, ","))
		}
	}
	if tokens, err = parseTokens(c.apiTokens); err != nil {
		return nil, nil, err
	}
	if _, _, err := net.SplitHostPort(c.httpAddr); err != nil {
		return nil, nil, fmt.Errorf("--http-addr: %w", err)
	}
	if len(tokens) == 0 && !loopbackOnly(c.httpAddr) {
		return nil, nil, fmt.Errorf("--http-addr %s is not a loopback address: set --api-tokens to serve beyond this machine", c.httpAddr)
	}
	if c.drainTimeout <= 0 {
		return nil, nil, errors.New("--drain-timeout must be positive")
	}
	if _, err := sender.ParseSchedule(c.retrySchedule); err != nil {
		return nil, nil, fmt.Errorf("--retry-schedule: %w", err)
	}
	if err := c.senderConfig(nil).Validate(); err != nil {
		return nil, nil, err
	}
	if err := (broker.Config{DataDir: c.dataDir, MaxMessageBytes: c.maxMessageBytes}).Validate(); err != nil {
		return nil, nil, fmt.Errorf("--max-message-bytes: %w", err)
	}
	if err := validMemoryLimit(c.memoryLimit, c.maxQueueBytes); err != nil {
		return nil, nil, err
	}
	return stages, tokens, nil
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}

// parseTokens reads token:tenant,token:tenant.
func parseTokens(s string) (map[string]string, error) {
	tokens := map[string]string{}
	for _, pair := range strings.Split(s, ",") {
		pair = strings.TrimSpace(pair)
		if pair == "" {
			continue
		}
		tok, tenant, ok := strings.Cut(pair, ":")
		if !ok || tok == "" || tenant == "" {
			return nil, fmt.Errorf("--api-tokens: %q is not token:tenant", pair)
		}
		tokens[tok] = tenant
	}
	return tokens, nil
}

func loopbackOnly(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func newLogger(w io.Writer, level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %w", err)
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: l})), nil
}

func serve(ctx context.Context, c *serveConfig, stdout, stderr io.Writer) error {
	stages, tokens, err := c.validate()
	if err != nil {
		return err
	}
	log, err := newLogger(stderr, c.logLevel)
	if err != nil {
		return err
	}
	log.Info("garbage collection", "settings", applyMemory(c.memoryLimit, c.maxQueueBytes, os.Getenv))
	if err := os.MkdirAll(c.dataDir, 0o755); err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	unlock, err := lockDataDir(c.dataDir)
	if err != nil {
		return err
	}
	defer unlock()
	// The HTTP address is taken first (every process serves /healthz,
	// /readyz and /metrics on it; the api stage its routes too): an address
	// in use is the first and only error, before the broker or the store
	// start.
	ln, err := net.Listen("tcp", c.httpAddr)
	if err != nil {
		return fmt.Errorf("--http-addr: %w", err)
	}
	defer func() {
		if ln != nil {
			ln.Close()
		}
	}()
	box, err := c.sealingBox(log)
	if err != nil {
		return err
	}
	metrics := prometheus.NewRegistry()
	metrics.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	scfg := c.senderConfig(metrics)
	bcfg := broker.Config{DataDir: c.dataDir, Partitions: c.partitions, RetentionDays: c.retentionDays,
		RetryTopics: scfg.Schedule.Topics(), MaxMessageBytes: c.maxMessageBytes, Addr: c.kafkaAddr}
	if c.kafkaBrokers != "" {
		bcfg.Brokers = strings.Split(c.kafkaBrokers, ",")
	}
	startCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	b, err := broker.Start(startCtx, bcfg, log)
	if err != nil {
		return err
	}
	defer b.Close()

	var store attemptStore
	if stages["api"] || stages["projector"] {
		if store, err = openStore(startCtx, c); err != nil {
			return err
		}
		defer store.Close()
	}

	// Stages stop when ctx ends (a signal) or when one of them fails. Every
	// goroutine started here is waited for before serve returns, also when
	// it returns an error halfway through starting.
	stageCtx, stopStages := context.WithCancel(ctx)
	defer stopStages()
	g, runCtx := errgroup.WithContext(stageCtx)
	// Only the api (test deliveries, rotations) and the sender (signing)
	// open secrets: a process of the other stages keeps them sealed, so
	// that no key can make a webhook unreadable to the matcher.
	registryBox := box
	if !stages["api"] && !stages["sender"] {
		registryBox = nil
	}
	registry := subscriptions.New(b, registryBox, log)
	regCtx, stopRegistry := context.WithCancel(context.WithoutCancel(ctx))
	regDone := make(chan error, 1)
	go func() { regDone <- registry.Run(regCtx) }()
	defer func() { stopRegistry(); <-regDone }()
	fail := func(err error) error {
		stopStages()
		g.Wait()
		return err
	}
	if err := registry.Sync(startCtx); err != nil {
		return fmt.Errorf("loading webhooks: %w", err)
	}
	log.Info("webhooks loaded", "count", registry.Len())
	metrics.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "hookline_webhooks_unreadable",
		Help: "Webhooks whose latest change this process cannot read (its secrets do not open with --secrets-key, or it does not decode): their jobs wait, uncommitted, and /readyz answers 503 naming them.",
	}, func() float64 { return float64(len(registry.UnreadableWebhooks())) }))
	webhooksReadable := func(context.Context) error { return unreadableError(registry.UnreadableWebhooks()) }

	metrics.MustRegister(broker.NewLagCollector(b, consumers(stages, scfg)))
	metrics.MustRegister(b.Collectors()...)
	if c.metricsAddr != "" {
		h := promhttp.HandlerFor(metrics, promhttp.HandlerOpts{Registry: metrics})
		if err := serveSide(runCtx, g, c.metricsAddr, "--metrics-addr", map[string]http.Handler{"/metrics": h}, log); err != nil {
			return fail(err)
		}
	}
	if c.debugAddr != "" {
		if err := serveDebug(runCtx, g, c.debugAddr, log); err != nil {
			return fail(err)
		}
	}
	if stages["matcher"] {
		mcfg := matcher.StageConfig{Registerer: metrics, DrainTimeout: c.drainTimeout}
		g.Go(func() error { return matcher.NewStage(b, registry, mcfg, log).Run(runCtx) })
	}
	if stages["sender"] {
		s, err := sender.NewStage(b, registry, scfg, log)
		if err != nil {
			return fail(err)
		}
		g.Go(func() error { return s.Run(runCtx) })
	}
	if stages["projector"] {
		g.Go(func() error {
			return projector.NewStage(b, store, projector.Config{Registerer: metrics, DrainTimeout: c.drainTimeout}, log).Run(runCtx)
		})
		g.Go(func() error { return retain(runCtx, store, c.retentionDays, log) })
	}
	if stages["api"] {
		replays, err := replay.New(b, registry, replay.Config{}, log)
		if err != nil {
			return fail(err)
		}
		g.Go(func() error { return replays.Run(runCtx) })
		// The breaker and the concurrency limit the API shows come from
		// hookline.endpoints, whichever process owns the endpoint.
		endpoints := sender.NewEndpointStates(b, log)
		g.Go(func() error { return endpoints.Run(runCtx) })
		breakers := endpoints
		answers := api.NewAnswers(b, log)
		g.Go(func() error { return answers.Run(runCtx) })
		deps := api.Deps{
			Answers:    answers,
			Replays:    replays,
			Webhooks:   registry,
			Deliveries: store,
			Breakers:   breakers,
			Metrics:    promhttp.HandlerFor(metrics, promhttp.HandlerOpts{Registry: metrics}),
			Checks:     map[string]api.Check{"broker": b.Ping, "store": store.Ping, "webhooks": webhooksReadable},
		}
		apiLn := ln
		ln = nil // serveHTTP owns it now
		if err := serveHTTP(runCtx, g, c, b, deps, apiLn, tokens, log, stdout); err != nil {
			return fail(err)
		}
	} else {
		checks := map[string]api.Check{"broker": b.Ping}
		if stages["sender"] || stages["matcher"] {
			checks["webhooks"] = webhooksReadable
		}
		if store != nil {
			checks["store"] = store.Ping
		}
		probes, err := api.NewProbes(api.Config{Tokens: tokens, Version: version, MetricsAddr: c.metricsAddr, MetricsToken: c.metricsToken, DedupeWindow: c.dedupeWindow},
			api.Deps{Checks: checks, Metrics: promhttp.HandlerFor(metrics, promhttp.HandlerOpts{Registry: metrics})}, log)
		if err != nil {
			return fail(err)
		}
		probesLn := ln
		ln = nil // runHTTP owns it now
		runHTTP(runCtx, g, probes.Handler(), probesLn, c.drainTimeout, nil)
		fmt.Fprintf(stdout, "hookline ready: http://%s stages=%s\n", probesLn.Addr(), c.stages)
	}
	if err := g.Wait(); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	log.Info("stopped cleanly")
	return nil
}

// consumers are the consumer groups of the stages this process runs, for
// the lag metric.
func consumers(stages map[string]bool, scfg sender.StageConfig) []broker.Consumer {
	var out []broker.Consumer
	if stages["matcher"] {
		out = append(out, broker.Consumer{Group: matcher.Group, Topic: schemas.TopicEvents})
	}
	if stages["sender"] {
		for _, topic := range scfg.Topics() {
			out = append(out, broker.Consumer{Group: sender.Group, Topic: topic})
		}
	}
	if stages["projector"] {
		out = append(out, broker.Consumer{Group: projector.Group, Topic: schemas.TopicAttempts})
	}
	return out
}

// serveDebug serves pprof on a loopback address.
func serveDebug(ctx context.Context, g *errgroup.Group, addr string, log *slog.Logger) error {
	if !loopbackOnly(addr) {
		return fmt.Errorf("--debug-addr %s: profiles are served on loopback only", addr)
	}
	return serveSide(ctx, g, addr, "--debug-addr", map[string]http.Handler{
		"/debug/pprof/": http.HandlerFunc(pprof.Index), "/debug/pprof/profile": http.HandlerFunc(pprof.Profile),
		"/debug/pprof/symbol": http.HandlerFunc(pprof.Symbol), "/debug/pprof/trace": http.HandlerFunc(pprof.Trace),
	}, log)
}

// serveSide serves handlers on an address of their own until ctx ends.
func serveSide(ctx context.Context, g *errgroup.Group, addr, flag string, handlers map[string]http.Handler, log *slog.Logger) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("%s: %w", flag, err)
	}
	mux := http.NewServeMux()
	for path, h := range handlers {
		mux.Handle(path, h)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second, IdleTimeout: time.Minute}
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error { <-ctx.Done(); return srv.Close() })
	log.Info("side address served", "flag", flag, "addr", "http://"+ln.Addr().String())
	return nil
}

// senderConfig builds the sender's configuration from the flags; the
// schedule was validated before.
func (c *serveConfig) senderConfig(reg prometheus.Registerer) sender.StageConfig {
	schedule, _ := sender.ParseSchedule(c.retrySchedule)
	return sender.StageConfig{
		HTTP: delivery.Config{UserAgentVersion: version, AllowPrivateTargets: c.allowPrivate,
			MaxResponseBody: c.maxResponseBody},
		Schedule: schedule,
		Breaker: sender.BreakerConfig{
			Failures: uint32(min(c.breakerFailures, 1001)), Cooldown: c.breakerCooldown, Probes: uint32(min(c.breakerProbes, 1001)),
		},
		EndpointConcurrency: c.endpointConcurrency,
		MaxQueueWait:        c.maxQueueWait,
		MaxQueueBytes:       c.maxQueueBytes,
		DisableAfter:        c.disableAfter,
		MaxInFlight:         c.maxInFlight,
		DrainTimeout:        c.drainTimeout,
		Registerer:          reg,
	}
}

// attemptStore is what serve uses of the attempts store.
type attemptStore interface {
	projector.Inserter
	api.Deliveries
	DropBefore(ctx context.Context, t time.Time) error
	Ping(ctx context.Context) error
	Close() error
}

// retain drops attempts older than the retention every hour, while the
// projector runs (one process of a deployment is enough; dropping twice is
// harmless).
func retain(ctx context.Context, store attemptStore, days int, log *slog.Logger) error {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		cutoff := time.Now().UTC().Add(-time.Duration(days) * 24 * time.Hour)
		if err := store.DropBefore(ctx, cutoff); err != nil && ctx.Err() == nil {
			log.Warn("retention: dropping old attempts failed; trying again in an hour", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

func openStore(ctx context.Context, c *serveConfig) (attemptStore, error) {
	if c.clickhouseDSN != "" {
		s, err := clickhouse.Open(ctx, c.clickhouseDSN)
		if err != nil {
			return nil, fmt.Errorf("--clickhouse-dsn: %w", err)
		}
		return s, nil
	}
	s, err := embedded.Open(filepath.Join(c.dataDir, "attempts.db"))
	if err != nil {
		return nil, fmt.Errorf("embedded attempts store: %w", err)
	}
	return s, nil
}

func serveHTTP(ctx context.Context, g *errgroup.Group, c *serveConfig, b *broker.Broker, deps api.Deps, ln net.Listener,
	tokens map[string]string, log *slog.Logger, stdout io.Writer) error {
	producer := api.NewProducer(b)
	deps.Events = producer
	deps.Jobs = producer
	deps.Failures = producer
	server, err := api.New(api.Config{Tokens: tokens, Version: version, MetricsAddr: c.metricsAddr, MetricsToken: c.metricsToken, DedupeWindow: c.dedupeWindow}, deps, log)
	if err != nil {
		producer.Close()
		ln.Close()
		return err
	}
	// The API's sweeps (failing what waits on a webhook it disabled) write
	// through the producer: they stop before it closes.
	runHTTP(ctx, g, server.Handler(), ln, c.drainTimeout, func(ctx context.Context) {
		if err := server.Shutdown(ctx); err != nil {
			log.Warn("api: background work cut short at shutdown", "err", err)
		}
		producer.Close()
	})
	fmt.Fprintf(stdout, "hookline ready: http://%s stages=%s\n", ln.Addr(), c.stages)
	return nil
}

// runHTTP serves handler on ln until ctx ends, then shuts the server down
// and calls stopped, if any, both within drain.
func runHTTP(ctx context.Context, g *errgroup.Group, handler http.Handler, ln net.Listener, drain time.Duration, stopped func(context.Context)) {
	srv := &http.Server{
		Handler:           handler,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
	}
	g.Go(func() error {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	})
	g.Go(func() error {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), drain)
		defer cancel()
		err := srv.Shutdown(shutdownCtx)
		if stopped != nil {
			stopped(shutdownCtx)
		}
		return err
	})
}

// unreadableError names the webhooks this process cannot read, for
// /readyz; nil when it reads them all.
func unreadableError(bad map[string]string) error {
	if len(bad) == 0 {
		return nil
	}
	ids := slices.Sorted(maps.Keys(bad))
	const shown = 5
	var parts []string
	for _, id := range ids[:min(len(ids), shown)] {
		parts = append(parts, "webhook "+id+": "+bad[id])
	}
	more := ""
	if len(ids) > shown {
		more = fmt.Sprintf(" (and %d more)", len(ids)-shown)
	}
	return api.Shown{Err: fmt.Errorf("%d webhooks cannot be read, their jobs wait: %s%s; give every process the same --secrets-key", len(ids), strings.Join(parts, "; "), more)}
}

// sealingBox is the box of --secrets-key, or of the key file in the data
// directory, made on first start.
func (c *serveConfig) sealingBox(log *slog.Logger) (*sealing.Box, error) {
	keys := c.secretsKey
	if keys == "" {
		path := filepath.Join(c.dataDir, "secrets.key")
		k, err := sealing.LoadOrCreateKeyFile(path)
		if err != nil {
			return nil, err
		}
		keys = k
	}
	box, err := sealing.ParseKeys(keys)
	if err != nil {
		return nil, fmt.Errorf("--secrets-key: %w", err)
	}
	return box, nil
}

// lockDataDir takes an exclusive lock on the data directory, so that a
// second serve on it says so at once instead of failing later on the
// broker's or the store's files.
func lockDataDir(dir string) (unlock func(), err error) {
	path := filepath.Join(dir, "LOCK")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("--data-dir: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("--data-dir %s is in use by another hookline serve (it holds %s); stop it, or give this one another --data-dir", dir, path)
		}
		return nil, fmt.Errorf("--data-dir: lock %s: %w", path, err)
	}
	return func() { f.Close() }, nil
}
