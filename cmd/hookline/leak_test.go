package main

import (
	"bytes"
	"context"
	"flag"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// TestServeLeavesNoGoroutines runs every stage of serve in this process,
// sends an event through it, stops it, and checks that every goroutine it
// started has ended.
func TestServeLeavesNoGoroutines(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	runServe := serveFlags(fs)
	if err := fs.Parse([]string{"--data-dir", t.TempDir(), "--http-addr", "127.0.0.1:0", "--partitions", "2",
		"--allow-private-targets", "--drain-timeout", "5s"}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var out bytes.Buffer
	stdout := &lockedWriter{w: &out}
	printed := func() string {
		stdout.mu.Lock()
		defer stdout.mu.Unlock()
		return out.String()
	}
	done := make(chan error, 1)
	go func() { done <- runServe(ctx, stdout, io.Discard) }()

	ready := regexp.MustCompile(`hookline ready: (http://\S+)`)
	var base string
	for deadline := time.Now().Add(60 * time.Second); base == ""; time.Sleep(20 * time.Millisecond) {
		if m := ready.FindStringSubmatch(printed()); m != nil {
			base = m[1]
		}
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("serve not ready after 60 s: %q", printed())
		}
	}
	resp, err := http.Post(base+"/v1/events", "application/json",
		strings.NewReader(`{"resource":"ticket","trigger":"create","resource_id":"r1"}`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("POST /v1/events: %d", resp.StatusCode)
	}
	http.DefaultClient.CloseIdleConnections()
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("serve: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("serve did not stop")
	}
}
