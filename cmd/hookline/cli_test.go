package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookline/hookline/client"
	"github.com/hookline/hookline/projections"
	"github.com/hookline/hookline/schemas"
)

// runCLI runs the built binary and returns its stdout, stderr and exit code.
func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, args...)
	var stdout, stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	code := 0
	var ee *exec.ExitError
	switch {
	case errors.As(err, &ee):
		code = ee.ExitCode()
	case err != nil:
		t.Fatalf("hookline %v: %v", args, err)
	}
	return stdout.String(), stderr.String(), code
}

// TestCLICommands drives deliveries, redeliver and replay against a real
// hookline serve.
func TestCLICommands(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	var up atomic.Bool
	recv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !up.Load() {
			w.WriteHeader(http.StatusBadRequest) // fails at once, no retry
		}
	}))
	defer recv.Close()
	p := startServe(t, "--data-dir", t.TempDir())
	defer p.stop(t)
	hook := createHook(t, p, schemas.WebhookInput{Name: client.Ptr("cli"), URL: client.Ptr(recv.URL)})
	for i := 0; i < 3; i++ {
		p.call(t, "POST", "/v1/events", map[string]any{"resource": "ticket", "trigger": "create", "resource_id": fmt.Sprint("T-", i)}, 202)
	}
	waitFor(t, "3 failed deliveries", 30*time.Second, func() bool {
		return len(deliveriesOf(t, p, hook.ID, client.DeliveryQuery{State: "failed"}).Data) == 3
	})

	out, errOut, code := runCLI(t, "deliveries", "--api", p.base, "--webhook", hook.ID)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if code != 0 || len(lines) != 4 || !strings.HasPrefix(lines[0], "ID ") || !strings.Contains(lines[0], "LAST STATUS") {
		t.Fatalf("deliveries exited %d with\n%s\n%s", code, out, errOut)
	}
	t.Logf("hookline deliveries:\n%s", out)
	for _, l := range lines[1:] {
		if f := strings.Fields(l); len(f) < 7 || f[3] != "failed" || f[5] != "400" {
			t.Fatalf("row %q: want state failed, last status 400", l)
		}
	}
	_, errOut, code = runCLI(t, "deliveries", "--api", p.base, "--webhook", hook.ID, "--state", "lost")
	if code != 1 || !strings.Contains(errOut, "field state") {
		t.Fatalf("deliveries --state lost exited %d: %s", code, errOut)
	}

	up.Store(true)
	out, errOut, code = runCLI(t, "redeliver", "--api", p.base, "--webhook", hook.ID, "--failed")
	if code != 0 || !strings.Contains(out, "redelivering 3 failed deliveries") || !strings.Contains(out, "3 succeeded, 0 failed") {
		t.Fatalf("redeliver exited %d with\n%s\n%s", code, out, errOut)
	}

	t.Logf("hookline redeliver:\n%s%s", out, errOut)
	t0 := time.Now().UTC().Add(-100 * time.Millisecond).Format(time.RFC3339Nano)
	for i := 0; i < 2; i++ {
		p.call(t, "POST", "/v1/events", map[string]any{"resource": "order", "trigger": "paid", "resource_id": fmt.Sprint("O-", i)}, 202)
	}
	late := createHook(t, p, schemas.WebhookInput{Name: client.Ptr("late"), URL: client.Ptr(recv.URL)})
	out, errOut, code = runCLI(t, "replay", "--api", p.base, "--webhook", late.ID, "--from-time", t0, "--dry-run")
	t.Logf("hookline replay:\n%s%s", out, errOut)
	m := regexp.MustCompile(`done: scanned (\d+), matched (\d+), enqueued 0`).FindStringSubmatch(out)
	if code != 0 || m == nil || m[2] != "2" || len(m[1]) == 0 || m[1] == "0" || m[1] == "1" {
		t.Fatalf("replay --dry-run exited %d with\n%s\n%s", code, out, errOut)
	}
}

// TestCLIBadFlags: a flag that does not parse, or a bad combination, exits 2
// without calling the API.
func TestCLIBadFlags(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the built binary")
	}
	api := "http://127.0.0.1:1" // nothing listens: a call would exit 1
	for _, args := range [][]string{
		{"deliveries", "--api", api},
		{"deliveries", "--api", api, "--webhook", "w", "--since", "yesterday"},
		{"deliveries", "--api", api, "--webhook", "w", "--limit", "0"},
		{"redeliver", "--api", api},
		{"redeliver", "--api", api, "--delivery", "d", "--webhook", "w", "--failed"},
		{"redeliver", "--api", api, "--webhook", "w"},
		{"replay", "--api", api, "--webhook", "w"},
		{"replay", "--api", api, "--webhook", "w", "--from-offsets", "0=12"},
		{"replay", "--api", api, "--webhook", "w", "--from-time", "2024-01-01T00:00:00Z", "--from-offsets", "0:1"},
		{"replay", "--api", api, "--cancel", "r", "--webhook", "w"},
	} {
		_, errOut, code := runCLI(t, args...)
		if code != 2 || !strings.Contains(errOut, "hookline:") {
			t.Errorf("hookline %v exited %d, want 2: %s", args, code, errOut)
		}
	}
}

// TestDeliveriesTableShowsTheNextAttempt: a waiting delivery's row says when
// its next attempt is due; a finished one's says "-".
func TestDeliveriesTableShowsTheNextAttempt(t *testing.T) {
	next := time.Date(2026, 12, 7, 12, 30, 0, 0, time.UTC)
	var out strings.Builder
	err := printDeliveries(&out, []projections.Delivery{
		{ID: "d1", EventType: "ticket.updated", State: "retrying", AttemptCount: 1, LastStatusCode: 503, NextAttemptAt: &next},
		{ID: "d2", EventType: "ticket.updated", State: "succeeded", AttemptCount: 1, LastStatusCode: 204},
	})
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 3 || !strings.Contains(lines[0], "NEXT ATTEMPT") {
		t.Fatalf("table:\n%s", out.String())
	}
	if f := strings.Fields(lines[1]); len(f) != 8 || f[6] != "2026-12-07T12:30:00Z" {
		t.Errorf("the retrying row %q: want its next attempt, 2026-12-07T12:30:00Z", lines[1])
	}
	if f := strings.Fields(lines[2]); len(f) != 8 || f[6] != "-" {
		t.Errorf("the succeeded row %q: want no next attempt", lines[2])
	}
}
