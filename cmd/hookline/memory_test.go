package main

import (
	"strings"
	"testing"
)

func TestMemorySettings(t *testing.T) {
	env := func(kv ...string) func(string) string {
		return func(k string) string {
			for i := 0; i+1 < len(kv); i += 2 {
				if kv[i] == k {
					return kv[i+1]
				}
			}
			return ""
		}
	}
	for _, tt := range []struct {
		name         string
		limit, queue int64
		getenv       func(string) string
		percent      int
		want         int64
	}{
		{"defaults: sized from the queue", 0, 128 << 20, env(), 200, 400 << 20},
		{"a larger queue, a larger limit", 0, 1 << 30, env(), 200, 2<<30 + 144<<20},
		{"the flag", 1 << 30, 128 << 20, env(), 200, 1 << 30},
		{"no limit", -1, 128 << 20, env(), 200, 0},
		{"GOGC wins", 0, 128 << 20, env("GOGC", "100"), 0, 400 << 20},
		{"GOMEMLIMIT wins over the flag", 1 << 30, 128 << 20, env("GOMEMLIMIT", "2GiB"), 200, 0},
		{"a queue too large to double: none", 0, 1 << 62, env(), 200, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			percent, limit := memorySettings(tt.limit, tt.queue, tt.getenv)
			if percent != tt.percent || limit != tt.want {
				t.Fatalf("memorySettings(%d, %d) = GOGC %d, limit %d; want %d, %d", tt.limit, tt.queue, percent, limit, tt.percent, tt.want)
			}
		})
	}
}

func TestMemoryLimitMustLeaveRoomBeyondTheQueue(t *testing.T) {
	if err := validMemoryLimit(128<<20, 128<<20); err == nil || !strings.Contains(err.Error(), "twice the queue") {
		t.Fatalf("a limit equal to the queue: %v", err)
	}
	for _, ok := range []int64{0, -1, 256 << 20} {
		if err := validMemoryLimit(ok, 128<<20); err != nil {
			t.Errorf("--memory-limit %d: %v", ok, err)
		}
	}
}

// TestServeSetsItsOwnGarbageCollection: serve collects at GOGC 200 under
// a soft memory limit sized from its queue, as Go's own metrics show, and
// the environment's GOGC and GOMEMLIMIT win.
func TestServeSetsItsOwnGarbageCollection(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test")
	}
	for _, tt := range []struct {
		name      string
		env, args []string
		want      []string
	}{
		{"its defaults", []string{"GOGC=", "GOMEMLIMIT="}, []string{"--max-queue-bytes", "67108864"},
			[]string{"go_gc_gogc_percent 200\n", "go_gc_gomemlimit_bytes 2.85212672e+08\n"}},
		{"the environment's", []string{"GOGC=150", "GOMEMLIMIT=600MiB"}, []string{"--memory-limit", "314572800"},
			[]string{"go_gc_gogc_percent 150\n", "go_gc_gomemlimit_bytes 6.291456e+08\n"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			for _, kv := range tt.env {
				k, v, _ := strings.Cut(kv, "=")
				t.Setenv(k, v)
			}
			p := startServe(t, append([]string{"--data-dir", t.TempDir()}, tt.args...)...)
			metrics := string(p.call(t, "GET", "/metrics", nil, 200))
			for _, want := range tt.want {
				if !strings.Contains(metrics, want) {
					t.Errorf("/metrics lacks %q", strings.TrimSpace(want))
				}
			}
			p.stop(t)
		})
	}
}
