package projections

import (
	"strconv"

	"github.com/hookline/hookline/schemas"
)

// ClassError is the status class of an attempt that got no response.
const ClassError = "error"

// StatusClasses are the classes Stats.Attempts always reports, zero or not.
func StatusClasses() []string { return []string{"2xx", "3xx", "4xx", "5xx", ClassError} }

// DeliveryStates are the states Stats.Deliveries always reports, zero or
// not, so that a client need not tell "none" from "unknown".
func DeliveryStates() []string {
	return []string{schemas.StatePending, schemas.StateRetrying, schemas.StateSucceeded, schemas.StateFailed}
}

// StatusClass names the class an attempt's status code counts in, or ""
// for a code no class holds (1xx and anything outside 100–599 but 0): an
// HTTP client never ends an attempt on those, so they are not worth a key.
func StatusClass(code int) string {
	switch {
	case code == 0:
		return ClassError
	case code >= 200 && code < 600:
		return strconv.Itoa(code/100) + "xx"
	}
	return ""
}

// StatusRange reads DeliveryQuery.Status as the codes lo <= code < hi it
// keeps: "503" is one code, "5xx" a class (2xx to 5xx), "error" the code 0
// of an attempt with no response. ok is false for anything else, which
// matches no delivery: the API validates the value, so a store meeting one
// answers an empty page rather than an error.
func StatusRange(status string) (lo, hi int, ok bool) {
	switch {
	case status == ClassError:
		return 0, 1, true
	case len(status) == 3 && status[1:] == "xx" && status[0] >= '2' && status[0] <= '5':
		lo = int(status[0]-'0') * 100
		return lo, lo + 100, true
	case len(status) == 3:
		code, err := strconv.Atoi(status)
		if err != nil || code < 100 || code > 599 {
			return 0, 0, false
		}
		return code, code + 1, true
	}
	return 0, 0, false
}

// EmptyStats is Stats with every state and class a store always reports at
// zero, for a store to add to.
func EmptyStats() Stats {
	st := Stats{Deliveries: map[string]int64{}, Attempts: map[string]int64{}}
	for _, state := range DeliveryStates() {
		st.Deliveries[state] = 0
	}
	for _, class := range StatusClasses() {
		st.Attempts[class] = 0
	}
	return st
}

// SuccessRate is succeeded / (succeeded + failed) of counts by state, 0
// when neither has any.
func SuccessRate(deliveries map[string]int64) float64 {
	ok, failed := deliveries[schemas.StateSucceeded], deliveries[schemas.StateFailed]
	if ok+failed == 0 {
		return 0
	}
	return float64(ok) / float64(ok+failed)
}
