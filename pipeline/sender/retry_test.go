package sender

import (
	"fmt"
	"github.com/hookline/hookline/schemas"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestParseSchedule(t *testing.T) {
	growing := func(n int) string {
		parts := make([]string, n)
		for i := range parts {
			parts[i] = fmt.Sprintf("%ds", i+1)
		}
		return strings.Join(parts, ",")
	}
	tests := []struct {
		name    string
		in      string
		want    Schedule
		wantErr string // a part of the error message; "" means no error
	}{
		{
			name: "default schedule",
			in:   DefaultSchedule,
			want: Schedule{10 * time.Second, time.Minute, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour},
		},
		{name: "single delay", in: "30s", want: Schedule{30 * time.Second}},
		{name: "spaces around delays", in: " 10s , 1m,\t1h30m ", want: Schedule{10 * time.Second, time.Minute, 90 * time.Minute}},
		{name: "bounds 1s and 168h are allowed", in: "1s,168h", want: Schedule{time.Second, 168 * time.Hour}},
		{name: "20 delays are allowed", in: growing(20), want: func() Schedule {
			var s Schedule
			for i := 1; i <= 20; i++ {
				s = append(s, time.Duration(i)*time.Second)
			}
			return s
		}()},
		{name: "empty string", in: "", wantErr: "not a duration"},
		{name: "only spaces", in: "   ", wantErr: "not a duration"},
		{name: "trailing comma", in: "10s,1m,", wantErr: "not a duration"},
		{name: "number without unit", in: "10", wantErr: "not a duration"},
		{name: "word", in: "10s,soon", wantErr: "not a duration"},
		{name: "below 1s", in: "999ms,1m", wantErr: "outside 1s to 168h"},
		{name: "zero", in: "0s,1m", wantErr: "outside 1s to 168h"},
		{name: "negative", in: "-10s", wantErr: "outside 1s to 168h"},
		{name: "above 168h", in: "10s,168h1s", wantErr: "outside 1s to 168h"},
		{name: "equal delays do not grow", in: "10s,1m,1m", wantErr: "must grow"},
		{name: "shrinking delays", in: "1m,10s", wantErr: "must grow"},
		{name: "same delay spelled differently", in: "60s,1m", wantErr: "must grow"},
		{name: "21 delays", in: growing(21), wantErr: "at most 20"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseSchedule(tt.in)
			if tt.wantErr != "" {
				if err == nil {
					t.Fatalf("ParseSchedule(%q) = %v, want an error containing %q", tt.in, got, tt.wantErr)
				}
				if !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("ParseSchedule(%q) error = %q, want it to contain %q", tt.in, err, tt.wantErr)
				}
				if got != nil {
					t.Errorf("ParseSchedule(%q) returned %v along with an error", tt.in, got)
				}
				return
			}
			if err != nil {
				t.Fatalf("ParseSchedule(%q): %v", tt.in, err)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("ParseSchedule(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}

func TestMustSchedulePanicsOnInvalid(t *testing.T) {
	if got := MustSchedule("10s,1m"); !slices.Equal(got, Schedule{10 * time.Second, time.Minute}) {
		t.Fatalf("MustSchedule = %v", got)
	}
	defer func() {
		if recover() == nil {
			t.Fatal("MustSchedule of an invalid schedule did not panic")
		}
	}()
	MustSchedule("1m,10s")
}

func TestScheduleTopic(t *testing.T) {
	tests := []struct {
		name string
		d    time.Duration
		want string
	}{
		{name: "seconds", d: 10 * time.Second, want: "hookline.retry.10s"},
		{name: "whole minute drops 0s", d: time.Minute, want: "hookline.retry.1m"},
		{name: "whole minutes drop 0s", d: 30 * time.Minute, want: "hookline.retry.30m"},
		{name: "whole hours drop 0m0s", d: 2 * time.Hour, want: "hookline.retry.2h"},
		{name: "ten hours", d: 10 * time.Hour, want: "hookline.retry.10h"},
		{name: "90s is 1m30s", d: 90 * time.Second, want: "hookline.retry.1m30s"},
		{name: "hours and minutes", d: 150 * time.Minute, want: "hookline.retry.2h30m"},
		{name: "hours and ten minutes", d: 70 * time.Minute, want: "hookline.retry.1h10m"},
		{name: "hours, no minutes, some seconds", d: time.Hour + 30*time.Second, want: "hookline.retry.1h0m30s"},
		{name: "fractional seconds", d: 1500 * time.Millisecond, want: "hookline.retry.1.5s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Schedule{tt.d}
			if got := s.Topic(0); got != tt.want {
				t.Fatalf("Schedule{%s}.Topic(0) = %q, want %q", tt.d, got, tt.want)
			}
		})
	}
}

func TestScheduleTopics(t *testing.T) {
	tests := []struct {
		name     string
		schedule string
		want     []string
	}{
		{
			name:     "default schedule",
			schedule: DefaultSchedule,
			want: []string{
				"hookline.retry.10s", "hookline.retry.1m", "hookline.retry.5m", "hookline.retry.30m",
				"hookline.retry.2h", "hookline.retry.5h", "hookline.retry.10h",
			},
		},
		{
			name:     "mixed units",
			schedule: "90s,2h30m,168h",
			want:     []string{"hookline.retry.1m30s", "hookline.retry.2h30m", "hookline.retry.168h"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := MustSchedule(tt.schedule).Topics()
			if !slices.Equal(got, tt.want) {
				t.Fatalf("Topics() = %q, want %q", got, tt.want)
			}
		})
	}
}

// fixedRand is a Policy.Rand that always returns v.
func fixedRand(v float64) func() float64 { return func() float64 { return v } }

func TestPolicyDelay(t *testing.T) {
	def := MustSchedule(DefaultSchedule)
	// jittered is d lengthened by the largest jitter fixedRand(0.999) gives.
	jittered := func(d time.Duration) time.Duration { return d + time.Duration(float64(d)*0.1*0.999) }
	tests := []struct {
		name       string
		schedule   Schedule
		rand       float64
		n          int
		retryAfter time.Duration
		wantWait   time.Duration
	}{
		{name: "first failure waits the first delay", schedule: def, n: 1, wantWait: 10 * time.Second},
		{name: "second failure waits the second delay", schedule: def, n: 2, wantWait: time.Minute},
		{name: "fifth failure waits the fifth delay", schedule: def, n: 5, wantWait: 2 * time.Hour},
		{name: "seventh failure waits the last delay", schedule: def, n: 7, wantWait: 10 * time.Hour},
		{name: "hundredth failure keeps the last delay", schedule: def, n: 100, wantWait: 10 * time.Hour},
		{name: "n below 1 is the first failure", schedule: def, n: 0, wantWait: 10 * time.Second},
		{name: "full jitter lengthens the first delay by 10%", schedule: def, rand: 0.999, n: 1, wantWait: jittered(10 * time.Second)},
		{name: "half jitter", schedule: def, rand: 0.5, n: 3, wantWait: 315 * time.Second},
		{name: "larger Retry-After wins", schedule: def, n: 1, retryAfter: 3 * time.Minute, wantWait: 3 * time.Minute},
		{name: "Retry-After beyond the last delay is capped", schedule: def, n: 1, retryAfter: 24 * time.Hour, wantWait: 10 * time.Hour},
		{name: "smaller Retry-After changes nothing", schedule: def, n: 2, retryAfter: 5 * time.Second, wantWait: time.Minute},
		{name: "Retry-After under the jittered delay changes nothing", schedule: def, rand: 0.999, n: 1, retryAfter: 10 * time.Second, wantWait: jittered(10 * time.Second)},
		{name: "negative Retry-After changes nothing", schedule: def, n: 1, retryAfter: -time.Hour, wantWait: 10 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Policy{Schedule: tt.schedule, Jitter: 0.1, Rand: fixedRand(tt.rand)}
			if wait := p.Delay(tt.n, tt.retryAfter); wait-tt.wantWait < -time.Microsecond || wait-tt.wantWait > time.Microsecond {
				t.Errorf("Delay(%d, %s) = %s, want %s", tt.n, tt.retryAfter, wait, tt.wantWait)
			}
		})
	}
}

// TestPolicyDelayProperties checks Delay's promises over many random
// inputs: never before the schedule's nth delay, never before a
// Retry-After up to the last delay, at most the jitter past both.
func TestPolicyDelayProperties(t *testing.T) {
	for _, s := range []Schedule{MustSchedule(DefaultSchedule), MustSchedule("10s,11s,12s,13s,1m"), MustSchedule("5m"), MustSchedule("1s,168h")} {
		r := rand.New(rand.NewPCG(42, 7))
		p := Policy{Schedule: s, Jitter: 0.1, Rand: r.Float64}
		last := s[len(s)-1]
		for range 20000 {
			n := 1 + r.IntN(3*len(s)+2)
			retryAfter := time.Duration(r.Int64N(int64(2 * last)))
			wait := p.Delay(n, retryAfter)
			nth := s[min(n, len(s))-1]
			switch {
			case wait < nth:
				t.Fatalf("%v: Delay(%d, %s) = %s, before the schedule's %s", s, n, retryAfter, wait, nth)
			case wait < min(retryAfter, last):
				t.Fatalf("%v: Delay(%d, %s) = %s, before Retry-After", s, n, retryAfter, wait)
			case float64(wait) > 1.1*float64(max(nth, min(retryAfter, last))):
				t.Fatalf("%v: Delay(%d, %s) = %s, more than the jitter past both", s, n, retryAfter, wait)
			}
		}
	}
}

// TestTheLadderGivesEveryWaitTheLongestRungThatFits: a wait goes on the
// longest delay topic no longer than it (the rest is waited on shorter
// ones, then in memory), so that no record waits past its topic's delay.
func TestTheLadderGivesEveryWaitTheLongestRungThatFits(t *testing.T) {
	l := newLadder(MustSchedule(DefaultSchedule), 5*time.Second)
	if l[0].topic != schemas.TopicOverflow || l[0].delay != 5*time.Second || l[1].topic != "hookline.retry.10s" {
		t.Fatalf("ladder %v: want hookline.overflow (5s) first, then the tiers", l)
	}
	for _, tt := range []struct {
		wait time.Duration
		want string // "" for none: waited in memory
	}{
		{time.Second, ""},
		{5 * time.Second, schemas.TopicOverflow},
		{9 * time.Second, schemas.TopicOverflow},
		{10 * time.Second, "hookline.retry.10s"},
		{59 * time.Second, "hookline.retry.10s"},
		{61 * time.Second, "hookline.retry.1m"},
		{3 * time.Hour, "hookline.retry.2h"},
		{100 * time.Hour, "hookline.retry.10h"},
	} {
		r, ok := l.below(tt.wait)
		if got := map[bool]string{true: r.topic}[ok]; got != tt.want {
			t.Errorf("below(%s) = %q, want %q", tt.wait, got, tt.want)
		}
		if ok && r.delay > tt.wait {
			t.Errorf("below(%s): %s waits %s, longer than the wait", tt.wait, r.topic, r.delay)
		}
	}
	// A schedule shorter than the overflow's delay sorts below it.
	l = newLadder(MustSchedule("1s,2s"), 5*time.Second)
	if got := []time.Duration{l[0].delay, l[1].delay, l[2].delay}; !slices.Equal(got, []time.Duration{time.Second, 2 * time.Second, 5 * time.Second}) {
		t.Fatalf("ladder of 1s,2s with a 5s overflow: %v", got)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	const maxWait = 30 * 24 * time.Hour
	tests := []struct {
		name  string
		value string
		want  time.Duration
	}{
		{name: "seconds", value: "120", want: 2 * time.Minute},
		{name: "one second", value: "1", want: time.Second},
		{name: "seconds with surrounding spaces", value: "  120\t", want: 2 * time.Minute},
		{name: "empty", value: "", want: 0},
		{name: "only spaces", value: "   ", want: 0},
		{name: "zero", value: "0", want: 0},
		{name: "negative", value: "-30", want: 0},
		{name: "garbage", value: "soon", want: 0},
		{name: "fraction of seconds", value: "1.5", want: 0},
		{name: "duration syntax", value: "120s", want: 0},
		{name: "exactly 30 days", value: "2592000", want: maxWait},
		{name: "just over 30 days is capped", value: "2592001", want: maxWait},
		{name: "huge number of seconds is capped", value: "9999999999", want: maxWait},
		{name: "largest int64 seconds is capped", value: "9223372036854775807", want: maxWait},
		{name: "HTTP date in the future", value: now.Add(90 * time.Second).Format(http.TimeFormat), want: 90 * time.Second},
		{name: "HTTP date a day ahead", value: now.Add(24 * time.Hour).Format(http.TimeFormat), want: 24 * time.Hour},
		{name: "HTTP date with surrounding spaces", value: " " + now.Add(time.Minute).Format(http.TimeFormat) + " ", want: time.Minute},
		{name: "ANSI C date in the future", value: now.Add(time.Hour).Format(time.ANSIC), want: time.Hour},
		{name: "HTTP date now", value: now.Format(http.TimeFormat), want: 0},
		{name: "HTTP date in the past", value: now.Add(-time.Hour).Format(http.TimeFormat), want: 0},
		{name: "malformed date", value: "Sun, 01 Mar 2026 25:00:00 GMT", want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := RetryAfter(tt.value, now); got != tt.want {
				t.Fatalf("RetryAfter(%q) = %s, want %s", tt.value, got, tt.want)
			}
		})
	}
}

func TestRegressionRetryAfterOverflowingSecondsIsCapped(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	if got := RetryAfter("99999999999999999999", now); got != 30*24*time.Hour {
		t.Fatalf("RetryAfter(20 nines) = %s, want 720h0m0s", got)
	}
}

func TestRegressionRetryAfterDateIsCappedLikeSeconds(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	v := now.Add(365 * 24 * time.Hour).Format(http.TimeFormat)
	if got := RetryAfter(v, now); got > 30*24*time.Hour {
		t.Fatalf("RetryAfter(date a year ahead) = %s, want at most 720h0m0s", got)
	}
}

func TestRegressionPolicyZeroRandUsesDefault(t *testing.T) {
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("Policy without Rand panicked: %v", r)
		}
	}()
	Policy{Schedule: MustSchedule(DefaultSchedule), Jitter: 0.2}.Delay(1, 0)
}

func TestRegressionPolicyNegativeJitterNeverShortensTheWait(t *testing.T) {
	s := MustSchedule(DefaultSchedule)
	if wait := (Policy{Schedule: s, Jitter: -0.5, Rand: func() float64 { return 0.999 }}).Delay(7, 0); wait < s[6] {
		t.Fatalf("wait %s, before the schedule's %s", wait, s[6])
	}
}
