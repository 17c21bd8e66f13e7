package payload

import (
	"encoding/json"
	"testing"
)

func TestSelectValues(t *testing.T) {
	in := json.RawMessage(`{"priority":{"id":"p1","display":"High"},"tags":[{"id":7,"display":"VIP"},"plain"],` +
		`"owner":{"id":"u1","display":"Ann","email":"a@x"},"amount":12345678901234567890,"note":"<b>"}`)
	tests := []struct{ mode, want string }{
		{SelectID, `{"amount":12345678901234567890,"note":"<b>","owner":{"display":"Ann","email":"a@x","id":"u1"},"priority":"p1","tags":[7,"plain"]}`},
		{SelectDisplay, `{"amount":12345678901234567890,"note":"<b>","owner":{"display":"Ann","email":"a@x","id":"u1"},"priority":"High","tags":["VIP","plain"]}`},
		{"", string(in)},
	}
	for _, tt := range tests {
		if got := string(SelectValues(in, tt.mode)); got != tt.want {
			t.Errorf("mode %q:\n got %s\nwant %s", tt.mode, got, tt.want)
		}
	}
	if got := string(SelectValues(json.RawMessage(`{"a":1}`), SelectID)); got != `{"a":1}` {
		t.Errorf("data without single-select values changed: %s", got)
	}
}

func TestChangesFollowTheFieldSelection(t *testing.T) {
	changes := json.RawMessage(`{"priority":{"old":"Low","new":"High"},"customer.email":{"old":"a","new":"b"},"secret":{"old":1,"new":2}}`)
	if got := Changes(changes, nil); string(got) != string(changes) {
		t.Errorf("without a selection: %s, want every change", got)
	}
	want := `{"customer.email":{"old":"a","new":"b"},"priority":{"old":"Low","new":"High"}}`
	if got := string(Changes(changes, []string{"priority", "customer"})); got != want {
		t.Errorf("selection priority, customer: %s, want %s", got, want)
	}
	if got := Changes(changes, []string{"other"}); got != nil {
		t.Errorf("nothing selected changed: %s, want nil", got)
	}
	if got := Changes(json.RawMessage(`5`), nil); got != nil {
		t.Errorf("changes not an object: %s, want nil", got)
	}
}
