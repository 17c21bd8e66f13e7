package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/hookline/hookline/pipeline/broker"
)

// brokerConfig is `hookline broker`: the embedded broker alone, so that
// several `hookline serve --stages …` processes on one machine share it
// (tests, local scale-out). Production runs a real Kafka cluster.
type brokerConfig struct {
	dataDir    string
	addr       string
	partitions int
}

func brokerFlags(fs *flag.FlagSet) func(ctx context.Context, stdout, stderr io.Writer) error {
	c := &brokerConfig{}
	fs.StringVar(&c.dataDir, "data-dir", "./data", "directory of the broker's files (its log lives in DIR/kafka); one process at a time")
	fs.StringVar(&c.addr, "addr", "127.0.0.1:9092", "address the broker listens on and advertises; serve processes take it as --kafka-brokers")
	fs.IntVar(&c.partitions, "partitions", 6, "partitions of a topic created without a count")
	return func(ctx context.Context, stdout, stderr io.Writer) error { return runBroker(ctx, c, stdout, stderr) }
}

func runBroker(ctx context.Context, c *brokerConfig, stdout, stderr io.Writer) error {
	if c.addr == "" {
		return errors.New("--addr is required: the serve processes find the broker there")
	}
	if err := os.MkdirAll(c.dataDir, 0o755); err != nil {
		return fmt.Errorf("--data-dir: %w", err)
	}
	unlock, err := lockDataDir(c.dataDir)
	if err != nil {
		return err
	}
	defer unlock()
	log, err := newLogger(stderr, "info")
	if err != nil {
		return err
	}
	cluster, err := broker.StartEmbedded(broker.Config{DataDir: c.dataDir, Addr: c.addr, Partitions: c.partitions})
	if err != nil {
		return fmt.Errorf("--addr %s: %w", c.addr, err)
	}
	log.Info("embedded kafka started", "addrs", cluster.ListenAddrs(), "dir", c.dataDir)
	fmt.Fprintf(stdout, "hookline broker ready: %s\n", cluster.ListenAddrs()[0])
	<-ctx.Done()
	// Close saves the log to the data dir: a restart at the same address
	// finds every topic and offset.
	cluster.Close()
	log.Info("embedded kafka stopped")
	return nil
}
