package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/hookline/hookline/schemas"
)

// Replays runs replays of hookline.events (package replay).
type Replays interface {
	// CreateReplay starts a replay for the tenant. It returns a
	// *schemas.FieldError for a request that cannot be replayed (a
	// partition that does not exist, an offset past the end).
	CreateReplay(ctx context.Context, tenant string, req schemas.ReplayRequest) (schemas.Replay, error)
	// Replay returns the tenant's replay with that id.
	Replay(tenant, id string) (schemas.Replay, bool)
	// CancelReplay stops a running replay: schemas.ErrReplayNotFound for
	// one that is not the tenant's, schemas.ErrReplayFinished for one that
	// is over.
	CancelReplay(ctx context.Context, tenant, id string) (schemas.Replay, error)
	// Replays returns the tenant's replays, newest first.
	Replays(tenant string) []schemas.Replay
}

// replayRoutes serves /v1/replays, or answers 501 there without Replays.
func (s *Server) replayRoutes(v1 *prefixed) {
	get := []string{http.MethodGet, http.MethodHead}
	if s.deps.Replays == nil {
		v1.HandleFunc("/replays", notImplemented("replays")).Methods(append(get, http.MethodPost)...)
		v1.HandleFunc("/replays/{id}", notImplemented("replays")).Methods(append(get, http.MethodDelete)...)
		return
	}
	v1.HandleFunc("/replays", s.createReplay).Methods(http.MethodPost)
	v1.HandleFunc("/replays", s.listReplays).Methods(get...)
	v1.HandleFunc("/replays/{id}", s.getReplay).Methods(get...)
	v1.HandleFunc("/replays/{id}", s.cancelReplay).Methods(http.MethodDelete)
}

// replayInput is the body of POST /v1/replays; the positions are decoded
// one by one so that an error names the field inside them.
type replayInput struct {
	WebhookIDs []string        `json:"webhook_ids"`
	From       json.RawMessage `json:"from"`
	To         json.RawMessage `json:"to"`
	DryRun     bool            `json:"dry_run"`
}

type positionInput struct {
	Time    *string          `json:"time"`
	Offsets map[string]int64 `json:"offsets"`
}

// readReplayRequest decodes and validates a replay request, the caller's
// webhooks included.
func (s *Server) readReplayRequest(r *http.Request) (schemas.ReplayRequest, *apiError) {
	var req schemas.ReplayRequest
	body, aerr := readBody(r)
	if aerr != nil {
		return req, aerr
	}
	var in replayInput
	if aerr := decodeObject(body, &in, ""); aerr != nil {
		return req, aerr
	}
	req.WebhookIDs, req.DryRun = in.WebhookIDs, in.DryRun
	if req.From, aerr = decodePosition(in.From, "from"); aerr != nil {
		return req, aerr
	}
	if req.To, aerr = decodePosition(in.To, "to"); aerr != nil {
		return req, aerr
	}
	if err := req.Validate(); err != nil {
		if aerr, ok := fieldError(err, ""); ok {
			return req, aerr
		}
		return req, invalid("", "%s", err.Error())
	}
	for i, id := range req.WebhookIDs {
		if _, ok := s.deps.Webhooks.Webhook(tenantOf(r), id); !ok {
			return req, invalid(fmt.Sprintf("webhook_ids[%d]", i), "no such webhook")
		}
	}
	return req, nil
}

// decodePosition decodes from or to; absent or null is nil.
func decodePosition(raw json.RawMessage, field string) (*schemas.ReplayPosition, *apiError) {
	if len(raw) == 0 || string(raw) == "null" {
		return nil, nil
	}
	var in positionInput
	if aerr := decodeObject(raw, &in, field+"."); aerr != nil {
		return nil, aerr
	}
	pos := &schemas.ReplayPosition{Offsets: in.Offsets}
	if in.Time != nil {
		t, err := time.Parse(time.RFC3339, *in.Time)
		if err != nil {
			return nil, invalid(field+".time", "must be an RFC 3339 time")
		}
		pos.Time = &t
	}
	return pos, nil
}

// createReplay is POST /v1/replays: 202 with the replay, running.
func (s *Server) createReplay(w http.ResponseWriter, r *http.Request) {
	req, aerr := s.readReplayRequest(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	rp, err := s.deps.Replays.CreateReplay(r.Context(), tenantOf(r), req)
	if err != nil {
		if aerr, ok := fieldError(err, ""); ok {
			writeError(w, aerr)
			return
		}
		s.dependencyFailed(w, r, "create replay", err)
		return
	}
	s.log.Info("api: replay created", "tenant", rp.Tenant, "replay_id", rp.ID, "dry_run", rp.DryRun)
	w.Header().Set("Location", "/v1/replays/"+rp.ID)
	writeJSON(w, http.StatusAccepted, rp.Public())
}

// getReplay is GET /v1/replays/{id}: the replay's progress.
func (s *Server) getReplay(w http.ResponseWriter, r *http.Request) {
	rp, ok := s.deps.Replays.Replay(tenantOf(r), mux.Vars(r)["id"])
	if !ok {
		writeError(w, notFound("replay"))
		return
	}
	writeJSON(w, http.StatusOK, rp.Public())
}

// cancelReplay is DELETE /v1/replays/{id}: 202 with the replay, cancelled;
// it stops at the next event it reads.
func (s *Server) cancelReplay(w http.ResponseWriter, r *http.Request) {
	tenant, id := tenantOf(r), mux.Vars(r)["id"]
	rp, err := s.deps.Replays.CancelReplay(r.Context(), tenant, id)
	switch {
	case errors.Is(err, schemas.ErrReplayNotFound):
		writeError(w, notFound("replay"))
		return
	case errors.Is(err, schemas.ErrReplayFinished):
		state := "finished"
		if cur, ok := s.deps.Replays.Replay(tenant, id); ok {
			state = cur.State
		}
		writeError(w, &apiError{Status: http.StatusConflict, Code: codeConflict,
			Message: "the replay is " + state + "; only a running replay can be cancelled"})
		return
	case err != nil:
		s.dependencyFailed(w, r, "cancel replay", err)
		return
	}
	s.log.Info("api: replay cancelled", "tenant", tenant, "replay_id", id)
	writeJSON(w, http.StatusAccepted, rp.Public())
}

// listReplays answers the tenant's replays, newest first, a page at a
// time, optionally of one state.
func (s *Server) listReplays(w http.ResponseWriter, r *http.Request) {
	q, aerr := parseQuery(r.URL.RawQuery, []string{"state", "limit", "cursor"})
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	state, _ := q.get("state")
	switch state {
	case "", schemas.ReplayRunning, schemas.ReplayDone, schemas.ReplayCancelled, schemas.ReplayFailed:
	default:
		writeError(w, invalid("state", "must be running, done, cancelled or failed"))
		return
	}
	limit, aerr := q.limit()
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	after := ""
	if v, ok := q.get("cursor"); ok {
		if after, ok = decodeCursor(v); !ok {
			writeError(w, invalid("cursor", "is not a cursor from a previous page"))
			return
		}
	}
	out := list[schemas.PublicReplay]{Data: []schemas.PublicReplay{}}
	all := s.deps.Replays.Replays(tenantOf(r))
	start := 0
	if after != "" {
		start = len(all)
		for i, rp := range all {
			if rp.ID == after {
				start = i + 1
				break
			}
		}
	}
	for _, rp := range all[start:] {
		if state != "" && rp.State != state {
			continue
		}
		if len(out.Data) == limit {
			out.NextCursor = encodeCursor(out.Data[len(out.Data)-1].ID)
			break
		}
		out.Data = append(out.Data, rp.Public())
	}
	writeJSON(w, http.StatusOK, out)
}
