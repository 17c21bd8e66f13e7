package sender_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/hookline/hookline/pipeline/broker"
	"github.com/hookline/hookline/schemas"
)

// TestStageAttemptRecordsStayUnderTheLimit: a retry's record does not
// repeat the request body, and an attempt that would pass the size limit
// (a large body and a large answer) is written without its request body,
// saying so, instead of wedging the outbox; the jobs after it go on.
func TestStageAttemptRecordsStayUnderTheLimit(t *testing.T) {
	const limit = 32 << 10
	answer := strings.Repeat("a", 20<<10)
	var calls atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/flaky" && calls.Add(1) == 1 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(answer))
	}))
	defer srv.Close()
	cfg := testStageConfig()
	cfg.HTTP.MaxResponseBody = 64 << 10
	e := newStageEnv(t, cfg, func(c *broker.Config) { c.MaxMessageBytes = limit })
	e.hooks.add("big", srv.URL+"/big")
	e.hooks.add("flaky", srv.URL+"/flaky")

	w := e.b.Writer(schemas.TopicDeliveries, nil)
	defer w.Close()
	payload := json.RawMessage(fmt.Sprintf(`{"blob":%q}`, strings.Repeat("x", 20<<10)))
	big := e.publishPayload(w, "big", 1, payload)[0]
	after := e.publishWith(w, "big", 1)[0]
	flaky := e.publishWith(w, "flaky", 1)[0]

	a := e.waitState(big, schemas.StateSucceeded, 20*time.Second)
	if a.RequestBody != "" || !strings.Contains(a.Error, "request body of") || len(a.ResponseBody) != len(answer) {
		t.Fatalf("big attempt: body %d bytes, error %q, answer %d bytes; want the request body left out, said, and the answer kept",
			len(a.RequestBody), a.Error, len(a.ResponseBody))
	}
	e.waitState(after, schemas.StateSucceeded, 20*time.Second)

	e.waitState(flaky, schemas.StateSucceeded, 20*time.Second)
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, att := range e.attempts[flaky] {
		if hasBody := att.RequestBody != ""; hasBody != (att.N == 1) {
			t.Errorf("attempt %d carries a body: %v; want only the first to", att.N, hasBody)
		}
	}
}
