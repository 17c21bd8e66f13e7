package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net/http"
	"sync"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"

	"github.com/hookline/hookline/schemas"
)

// Idempotency-Key: a POST that carries one gets, for 24 hours
// (IdempotencyKeyWindow), the first answer given to the same key of the
// same tenant on the same path, without being done again (a client's
// retry after a timeout creates one webhook, publishes once, starts one
// replay). The answers are kept on hookline.idempotency (Deps.Answers,
// Answers): a retry that reaches another API process, or this one after a
// restart, gets the first answer too. This process also keeps its own
// answers in hashicorp's LRU (bounded in entries, each ignored once older
// than the window; its expirable LRU runs a goroutine that never ends), so
// that a retry here never waits for the topic. Two processes answering the
// same key at the same moment both do the work: only a retry that comes
// after the first answer is written is answered from it.
//
// Event ids are remembered for Config.DedupeWindow in this process's
// memory (publishEvents); what makes a repeat harmless beyond that is the
// matcher's delivery ids, which an event's id and time decide.
const (
	IdempotencyKeyWindow = 24 * time.Hour
	DefaultDedupeWindow  = 24 * time.Hour
	idempotencyEntries   = 10000
	// publishedEntries bounds the event ids publishEvents remembers
	// (about 40 bytes each).
	publishedEntries  = 1 << 20
	maxIdempotencyKey = 255
	// idempotencyMaxBody is the largest answer kept; a larger one is
	// given but not kept (a retry is done again).
	idempotencyMaxBody = 256 << 10
	// keepTimeout bounds writing an answer to hookline.idempotency, and
	// the first look at what it holds.
	keepTimeout = 5 * time.Second
)

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
	done *window[schemas.Answer]
	// kept is where answers outlive this process; nil: in memory only.
	kept AnswerStore

	mu      sync.Mutex
	running map[string]bool
}

func newIdempotency(ttl time.Duration, kept AnswerStore) *idempotency {
	return &idempotency{done: newWindow[schemas.Answer](idempotencyEntries, ttl, time.Now), kept: kept, running: map[string]bool{}}
}

// answer is the first answer to key, from this process's memory or the
// kept answers.
func (k *idempotency) answer(ctx context.Context, key string) (schemas.Answer, bool, error) {
	k.mu.Lock()
	a, ok := k.done.get(key)
	k.mu.Unlock()
	if ok || k.kept == nil {
		return a, ok, nil
	}
	return k.kept.Answer(ctx, key)
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

		a, ok, err := s.keys.answer(r.Context(), id)
		if err != nil {
			s.dependencyFailed(w, r, "read the answers kept for Idempotency-Keys", err)
			return
		}
		s.keys.mu.Lock()
		if !ok {
			// The first request may have finished while the kept answers
			// were looked at: its answer is here now, under the lock that
			// its end takes.
			a, ok = s.keys.done.get(id)
		}
		running := !ok && s.keys.running[id]
		if !ok && !running {
			s.keys.running[id] = true
		}
		s.keys.mu.Unlock()
		if ok {
			if !bytes.Equal(a.Request, sum[:]) {
				writeError(w, &apiError{Status: http.StatusUnprocessableEntity, Code: codeIdempotencyKeyReused,
					Message: "this Idempotency-Key was used for another request body; use a new key for a new request"})
				return
			}
			for k, v := range a.Header {
				w.Header()[k] = v
			}
			w.Header().Set("Idempotent-Replayed", "true")
			w.WriteHeader(a.Status)
			w.Write(a.Body)
			return
		}
		if running {
			writeError(w, &apiError{Status: http.StatusConflict, Code: codeConflict,
				Message: "a request with this Idempotency-Key is still being answered; try again"})
			return
		}

		rec := &recording{ResponseWriter: w, status: http.StatusOK}
		defer func() {
			s.keys.mu.Lock()
			delete(s.keys.running, id)
			s.keys.mu.Unlock()
		}()
		next.ServeHTTP(rec, r)
		if rec.status >= 500 || rec.tooBig {
			return
		}
		header := http.Header{}
		for _, k := range []string{"Content-Type", "Location", "ETag"} {
			if v := w.Header().Values(k); len(v) > 0 {
				header[k] = v
			}
		}
		a = schemas.Answer{Key: id, Status: rec.status, Header: header, Body: rec.body.Bytes(), Request: sum[:], At: s.now().UTC()}
		s.keys.mu.Lock()
		s.keys.done.add(id, a)
		s.keys.mu.Unlock()
		// Written before the handler returns, so before the client has
		// the whole answer: a retry it sends after that finds it. Not
		// with the request's context: a client that timed out and went
		// away is the one that will retry.
		if s.keys.kept != nil {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), keepTimeout)
			defer cancel()
			if err := s.keys.kept.Keep(ctx, a); err != nil {
				s.log.Warn("could not keep an Idempotency-Key's answer beyond this process: a retry that reaches another process is done again", "err", err)
			}
		}
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
