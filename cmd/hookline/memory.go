package main

import (
	"fmt"
	"math"
	"runtime/debug"
	"strings"
)

// Serve's own settings of Go's garbage collector, unless the environment
// makes them (GOGC, GOMEMLIMIT, which Go reads at start and which then
// win). Go's defaults collect each time the heap doubles: in a burst that
// was a tenth of serve's CPU. Collecting at three times the live heap
// instead (gcPercent) took 6 to 9% off serve's CPU per delivery in the
// 50,000-event burst, and the soft memory limit keeps the peak where Go's
// defaults had it, by collecting more often only near the limit
// (docs/BENCHMARKS.md, "Garbage collection"). The limit is sized from
// --max-queue-bytes, the memory the sender may fill with waiting jobs, so
// a full queue leaves the collector room and does not make it run
// without end.
const (
	gcPercent = 200
	// memoryOverQueue is what the limit gives beyond twice the queue:
	// the other stages, the broker, the store and the runtime.
	memoryOverQueue = 144 << 20
)

// memorySettings is what serve sets: the GC percent (0: leave Go's) and
// the soft memory limit in bytes (0: leave Go's), given --memory-limit
// (0: sized from the queue; negative: none), --max-queue-bytes and the
// environment.
func memorySettings(memoryLimit, maxQueueBytes int64, getenv func(string) string) (percent int, limit int64) {
	if strings.TrimSpace(getenv("GOGC")) == "" {
		percent = gcPercent
	}
	switch {
	case strings.TrimSpace(getenv("GOMEMLIMIT")) != "":
	case memoryLimit > 0:
		limit = memoryLimit
	case memoryLimit == 0 && maxQueueBytes <= (math.MaxInt64-memoryOverQueue)/2: // else no limit
		limit = 2*maxQueueBytes + memoryOverQueue
	}
	return percent, limit
}

// validMemoryLimit reports a --memory-limit the queue alone would fill.
func validMemoryLimit(memoryLimit, maxQueueBytes int64) error {
	if memoryLimit > 0 && memoryLimit <= maxQueueBytes {
		return fmt.Errorf("--memory-limit %d is not over --max-queue-bytes %d: the sender's queue alone would fill it and the garbage collector would run without end; give it at least twice the queue, 0 to size it so, or -1 for none", memoryLimit, maxQueueBytes)
	}
	return nil
}

// applyMemory makes the settings and says what they are, for the log.
func applyMemory(memoryLimit, maxQueueBytes int64, getenv func(string) string) string {
	percent, limit := memorySettings(memoryLimit, maxQueueBytes, getenv)
	if percent > 0 {
		debug.SetGCPercent(percent)
	}
	if limit > 0 {
		debug.SetMemoryLimit(limit)
	}
	gogc, memlimit := "GOGC from the environment", "GOMEMLIMIT from the environment"
	if percent > 0 {
		gogc = fmt.Sprintf("GOGC %d", percent)
	}
	switch {
	case limit > 0:
		memlimit = fmt.Sprintf("memory limit %d MiB", limit>>20)
	case memoryLimit < 0 && getenv("GOMEMLIMIT") == "":
		memlimit = "no memory limit"
	}
	return gogc + ", " + memlimit
}
