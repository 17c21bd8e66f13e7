package delivery

import (
	"math"
	"testing"
	"time"

	"github.com/hookline/hookline/schemas"
)

func TestTimeoutFromWebhook(t *testing.T) {
	d, err := NewDeliverer(Config{}, nil, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		timeoutMS int
		want      time.Duration
	}{
		{name: "unset takes the default", timeoutMS: 0, want: DefaultTimeout},
		{name: "negative takes the default", timeoutMS: -5, want: DefaultTimeout},
		{name: "webhook value", timeoutMS: 1500, want: 1500 * time.Millisecond},
		{name: "at the cap", timeoutMS: schemas.MaxTimeoutMS, want: DefaultMaxTimeout},
		{name: "above the cap", timeoutMS: schemas.MaxTimeoutMS + 1, want: DefaultMaxTimeout},
		{name: "too large to be a Duration", timeoutMS: math.MaxInt, want: DefaultMaxTimeout},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := d.timeout(schemas.Webhook{TimeoutMS: tt.timeoutMS}); got != tt.want {
				t.Errorf("timeout(%d) = %s, want %s", tt.timeoutMS, got, tt.want)
			}
		})
	}
}
