package main

import (
	"bytes"
	"context"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// TestBenchCommand runs `hookline bench` through the real binary with tiny
// settings: one scenario, 200 events flat out, then 200 deliveries/s for
// 1 s. The table must show every delivery received once.
func TestBenchCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("starts hookline serve")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "bench", "--scenarios", "1-webhook",
		"--events", "200", "--rate", "200", "--duration", "1s", "--timeout", "80s")
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("hookline bench: %v\nstdout:\n%s\nstderr:\n%s", err, &stdout, &stderr)
	}
	out := stdout.String()
	if !strings.Contains(out, "SCENARIO") || !strings.Contains(out, "DELIVERIES/S") || !strings.Contains(out, "cores") {
		t.Fatalf("no table header or machine line in:\n%s", out)
	}
	var row []string
	for _, line := range strings.Split(out, "\n") {
		if f := strings.Fields(line); len(f) > 0 && f[0] == "1-webhook" {
			row = f
		}
	}
	if len(row) < 15 {
		t.Fatalf("no 1-webhook row in:\n%s", out)
	}
	events, deliveries := row[2], row[3]
	perSec, err := strconv.ParseFloat(row[4], 64)
	lost, dups := row[len(row)-2], row[len(row)-1]
	if events != "400" || deliveries != "400" || err != nil || perSec <= 0 || lost != "0" || dups != "0" {
		t.Fatalf("row %q: want 400 events, 400 deliveries, deliveries/s > 0, 0 lost, 0 duplicates\n%s", row, out)
	}
}
