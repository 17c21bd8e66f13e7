package projections_test

import (
	"testing"

	"github.com/hookline/hookline/projections"
)

func TestStatusRange(t *testing.T) {
	type span struct {
		lo, hi int
		ok     bool
	}
	cases := map[string]span{
		"503": {503, 504, true}, "200": {200, 201, true}, "100": {100, 101, true}, "599": {599, 600, true},
		"2xx": {200, 300, true}, "5xx": {500, 600, true}, "error": {0, 1, true},
		"": {}, "0": {}, "600": {}, "099": {}, "-50": {}, "+50": {}, "1xx": {}, "6xx": {}, "5XX": {},
		"5x": {}, "5xxx": {}, "50 ": {}, "ERROR": {}, "abc": {},
	}
	for in, want := range cases {
		lo, hi, ok := projections.StatusRange(in)
		if (span{lo, hi, ok}) != want && (ok || want.ok) {
			t.Errorf("StatusRange(%q) = %d, %d, %v; want %d, %d, %v", in, lo, hi, ok, want.lo, want.hi, want.ok)
		}
	}
}

func TestStatusClassAgreesWithStatusRange(t *testing.T) {
	for code := -1; code < 700; code++ {
		class := projections.StatusClass(code)
		if class == "" {
			if code == 0 || code >= 200 && code < 600 {
				t.Errorf("StatusClass(%d) is empty", code)
			}
			continue
		}
		lo, hi, ok := projections.StatusRange(class)
		if !ok || code < lo || code >= hi {
			t.Errorf("StatusClass(%d) = %q, whose range %d..%d (ok %v) leaves it out", code, class, lo, hi, ok)
		}
	}
}

func TestSuccessRate(t *testing.T) {
	cases := []struct {
		name string
		in   map[string]int64
		want float64
	}{
		{"none finished", map[string]int64{"retrying": 4}, 0},
		{"empty", nil, 0},
		{"three of four", map[string]int64{"succeeded": 3, "failed": 1, "retrying": 10}, 0.75},
		{"all failed", map[string]int64{"failed": 2}, 0},
	}
	for _, c := range cases {
		if got := projections.SuccessRate(c.in); got != c.want {
			t.Errorf("%s: SuccessRate = %v; want %v", c.name, got, c.want)
		}
	}
}
