//go:build race

package sender

// raceDetector is on: the simulation, which runs on one goroutine and
// gains nothing from it at five times the cost, runs fewer seeds in this
// build (scripts/test.sh runs its 200 seeds without it).
const raceDetector = true
