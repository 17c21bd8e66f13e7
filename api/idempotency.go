package api

import (
	"bytes"
	"crypto/sha256"
	"io"
	"net/http"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Idempotency-Key: a POST that carries one gets, for the window
// (Config.IdempotencyWindow, default DefaultIdempotencyWindow),
// the first answer given to the same key of the same tenant on the same
// path, without being done again (a client's retry after a timeout
// creates one webhook, publishes once, starts one replay). hashicorp's
// LRU holds the answers, bounded in entries, each ignored once older than
// the window (its expirable LRU runs a goroutine that never ends); kept
// by this process only (behind a load balancer, a retry that reaches
// another API process is done again).
const (
	DefaultIdempotencyWindow = 24 * time.Hour
	idempotencyEntries       = 10000
	// publishedEntries bounds the event ids publishEvents remembers
	// (about 100 bytes each).
	publishedEntries  = 1 << 20
	maxIdempotencyKey = 255
	// idempotencyMaxBody is the largest answer kept; a larger one is
	// given but not kept (a retry is done again).
	idempotencyMaxBody = 256 << 10
)

// answer is a response kept for its Idempotency-Key.
type answer struct {
	status  int
	header  http.Header
	body    []byte
	request [sha256.Size]byte // of the request's body: the key names one request
}

// window is an LRU whose entries count for a time only.
type window[V any] struct {
	lru *lru.Cache[string, windowed[V]]
	ttl time.Duration
	now func() time.Time
}

type windowed[V any] struct {
	v  V
	at time.Time
}

func newWindow[V any](size int, ttl time.Duration, now func() time.Time) *window[V] {
	c, _ := lru.New[string, windowed[V]](size) // fails only for a size under 1
	return &window[V]{lru: c, ttl: ttl, now: now}
}

func (w *window[V]) get(key string) (V, bool) {
	e, ok := w.lru.Get(key)
	if !ok || w.now().Sub(e.at) >= w.ttl {
		var zero V
		return zero, false
	}
	return e.v, true
}

func (w *window[V]) add(key string, v V) { w.lru.Add(key, windowed[V]{v: v, at: w.now()}) }

type idempotency struct {
	done *window[answer]

	mu      sync.Mutex
	running map[string]bool
}

func newIdempotency(ttl time.Duration) *idempotency {
	return &idempotency{done: newWindow[answer](idempotencyEntries, ttl, time.Now), running: map[string]bool{}}
}

// idempotent answers a POST with an Idempotency-Key from what its first
// request got: the same status, body and headers, with
// Idempotent-Replayed: true. The same key with another body is a 422, and
// while the first request is still being answered a 409. Answers of 5xx
// are not kept: the retry is done again.
func (s *Server) idempotent(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		key := r.Header.Get("Idempotency-Key")
		if r.Method != http.MethodPost || key == "" {
			next.ServeHTTP(w, r)
			return
		}
		if len(key) > maxIdempotencyKey {
			writeError(w, &apiError{Status: http.StatusBadRequest, Code: codeInvalid,
				Message: "the Idempotency-Key header is longer than 255 characters"})
			return
		}
		body, aerr := readBody(r)
		if aerr != nil {
			writeError(w, aerr)
			return
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		sum := sha256.Sum256(body)
		id := tenantOf(r) + "\x00" + r.URL.Path + "\x00" + key

		s.keys.mu.Lock()
		if a, ok := s.keys.done.get(id); ok {
			s.keys.mu.Unlock()
			if a.request != sum {
				writeError(w, &apiError{Status: http.StatusUnprocessableEntity, Code: codeIdempotencyKeyReused,
					Message: "this Idempotency-Key was used for another request body; use a new key for a new request"})
				return
			}
			for k, v := range a.header {
				w.Header()[k] = v
			}
			w.Header().Set("Idempotent-Replayed", "true")
			w.WriteHeader(a.status)
			w.Write(a.body)
			return
		}
		if s.keys.running[id] {
			s.keys.mu.Unlock()
			writeError(w, &apiError{Status: http.StatusConflict, Code: codeConflict,
				Message: "a request with this Idempotency-Key is still being answered; try again"})
			return
		}
		s.keys.running[id] = true
		s.keys.mu.Unlock()

		rec := &recording{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			s.keys.mu.Lock()
			defer s.keys.mu.Unlock()
			delete(s.keys.running, id)
			if rec.status < 500 && !rec.tooBig {
				header := http.Header{}
				for _, k := range []string{"Content-Type", "Location", "ETag"} {
					if v := w.Header().Values(k); len(v) > 0 {
						header[k] = v
					}
				}
				s.keys.done.add(id, answer{status: rec.status, header: header, body: rec.body.Bytes(), request: sum})
			}
		}()
		next.ServeHTTP(rec, r)
	})
}

// recording is a ResponseWriter that keeps a copy of what it writes.
type recording struct {
	http.ResponseWriter
	status int
	body   bytes.Buffer
	tooBig bool
}

func (r *recording) WriteHeader(status int) {
	r.status = status
	r.ResponseWriter.WriteHeader(status)
}

func (r *recording) Write(p []byte) (int, error) {
	if r.body.Len()+len(p) > idempotencyMaxBody {
		r.tooBig = true
	} else {
		r.body.Write(p)
	}
	return r.ResponseWriter.Write(p)
}
