package schemas

import "strings"

// TypeMatches reports whether an event type is selected by a webhook's
// events list: "*" selects everything, "ticket.*" every type of the ticket
// resource, anything else that exact type.
func TypeMatches(patterns []string, eventType string) bool {
	for _, p := range patterns {
		if patternMatches(p, eventType) {
			return true
		}
	}
	return false
}

func patternMatches(p, eventType string) bool {
	if p == "*" || p == eventType {
		return true
	}
	res, ok := strings.CutSuffix(p, ".*")
	return ok && len(eventType) > len(res) && eventType[len(res)] == '.' && strings.HasPrefix(eventType, res)
}

// ResourceMatches reports whether a webhook's events list selects any event
// of the resource: "*", "resource.*" or "resource.<anything>".
func ResourceMatches(patterns []string, resource string) bool {
	for _, p := range patterns {
		if p == "*" || strings.HasPrefix(p, resource+".") {
			return true
		}
	}
	return false
}
