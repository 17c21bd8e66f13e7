package schemas

import "testing"

func TestTypeMatches(t *testing.T) {
	tests := []struct {
		patterns []string
		typ      string
		want     bool
	}{
		{[]string{"*"}, "ticket.created", true},
		{[]string{"ticket.created"}, "ticket.created", true},
		{[]string{"ticket.created"}, "ticket.updated", false},
		{[]string{"ticket.*"}, "ticket.updated", true},
		{[]string{"ticket.*"}, "tickets.updated", false},
		{[]string{"ticket.*"}, "event.created", false},
		{[]string{"order.paid", "ticket.*"}, "ticket.deleted", true},
		{nil, "ticket.created", false},
	}
	for _, tt := range tests {
		if got := TypeMatches(tt.patterns, tt.typ); got != tt.want {
			t.Errorf("TypeMatches(%v, %q) = %v, want %v", tt.patterns, tt.typ, got, tt.want)
		}
	}
}

func TestResourceMatches(t *testing.T) {
	if !ResourceMatches([]string{"*"}, "ticket") || !ResourceMatches([]string{"ticket.created"}, "ticket") ||
		ResourceMatches([]string{"tickets.created"}, "ticket") || ResourceMatches([]string{"event.*"}, "ticket") {
		t.Fatal("ResourceMatches is wrong")
	}
}
