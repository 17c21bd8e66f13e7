package api

import (
	"errors"
	"fmt"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/hookline/hookline/schemas"
)

// publicView is the webhook as the API answers it, times in UTC, with its
// endpoint's breaker state and concurrency limit as its sender published
// them (hookline.endpoints).
func (s *Server) publicView(w schemas.Webhook) schemas.PublicWebhook {
	p := w.Public()
	p.CreatedAt = p.CreatedAt.UTC()
	p.UpdatedAt = p.UpdatedAt.UTC()
	if s.deps.Breakers != nil {
		p.BreakerState = s.deps.Breakers.State(w.ID)
		if l, ok := s.deps.Breakers.(interface{ Limit(string) int }); ok {
			p.ConcurrencyLimit = l.Limit(w.ID)
		}
	}
	now := s.now()
	for _, prev := range w.PreviousSecrets {
		if until := prev.Until.UTC(); until.After(now) && (p.PreviousSecretExpiresAt == nil || until.After(*p.PreviousSecretExpiresAt)) {
			p.PreviousSecretExpiresAt = &until
		}
	}
	return p
}

// readInput reads a WebhookInput body strictly.
func readInput(r *http.Request) (schemas.WebhookInput, *apiError) {
	var in schemas.WebhookInput
	body, aerr := readBody(r)
	if aerr != nil {
		return in, aerr
	}
	if aerr := decodeObject(body, &in, ""); aerr != nil {
		return in, aerr
	}
	in.MarkNulls(body)
	return in, nil
}

// applyInput merges and validates the input into w.
func applyInput(in *schemas.WebhookInput, w *schemas.Webhook, create bool) *apiError {
	if err := in.Apply(w, create); err != nil {
		if aerr, ok := fieldError(err, ""); ok {
			return aerr
		}
		return invalid("", "%s", err.Error())
	}
	return nil
}

func (s *Server) createWebhook(w http.ResponseWriter, r *http.Request) {
	in, aerr := readInput(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	var wh schemas.Webhook
	if aerr := applyInput(&in, &wh, true); aerr != nil {
		writeError(w, aerr)
		return
	}
	now := s.now()
	wh.ID = s.deps.NewID()
	wh.Tenant = tenantOf(r)
	wh.CreatedAt, wh.UpdatedAt = now, now
	wh.Version = 1
	ev := schemas.WebhookEvent{Op: schemas.OpCreated, At: now, Webhook: wh}
	if err := s.deps.Webhooks.PublishWebhook(r.Context(), ev); err != nil {
		s.dependencyFailed(w, r, "publish webhook", err)
		return
	}
	s.log.Info("api: webhook created", "tenant", wh.Tenant, "webhook_id", wh.ID)
	w.Header().Set("Location", "/v1/webhooks/"+wh.ID)
	view := s.publicView(wh)
	if in.Secret == nil && !in.NoSecret {
		view.Secret = wh.Secret // generated: shown this once
	}
	view.Warnings = schemas.CatalogueWarnings(wh.Events)
	w.Header().Set("ETag", etag(wh))
	writeJSON(w, http.StatusCreated, view)
}

// lookup returns the caller's webhook named by the route, or a 404: another
// tenant's webhook does not exist for the caller.
func (s *Server) lookup(r *http.Request) (schemas.Webhook, *apiError) {
	tenant, id := tenantOf(r), mux.Vars(r)["id"]
	wh, ok := s.deps.Webhooks.Webhook(tenant, id)
	if u, can := s.deps.Webhooks.(unreadableWebhooks); can && (ok || len(s.cfg.Tokens) == 0) {
		// Its latest change does not read here: what this process holds
		// of it, if anything, is stale, and it is not gone.
		if why, bad := u.Unreadable(id); bad {
			return schemas.Webhook{}, &apiError{Status: http.StatusServiceUnavailable, Code: codeUnavailable,
				Message: "webhook " + id + " cannot be read by this process: " + why}
		}
	}
	if !ok || wh.Tenant != tenant {
		return schemas.Webhook{}, notFound("webhook")
	}
	return wh, nil
}

// unreadableWebhooks is a Webhooks that knows which webhooks' latest
// change it could not read (subscriptions.Registry).
type unreadableWebhooks interface {
	Unreadable(id string) (string, bool)
}

func (s *Server) getWebhook(w http.ResponseWriter, r *http.Request) {
	wh, aerr := s.lookup(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	w.Header().Set("ETag", etag(wh))
	writeJSON(w, http.StatusOK, s.publicView(wh))
}

// etag is a webhook's entity tag: its version.
func etag(wh schemas.Webhook) string { return `"` + strconv.FormatInt(wh.Version, 10) + `"` }

// ifMatch reads a request's If-Match (RFC 9110 §13.1.1) as a check of the
// webhook a change is made from: true when absent or "*", or when one of
// its tags is the webhook's; a change from another version is refused
// with 412, so that a client never overwrites a change it has not seen.
func ifMatch(r *http.Request) func(schemas.Webhook) error {
	header := strings.TrimSpace(r.Header.Get("If-Match"))
	return func(wh schemas.Webhook) error {
		if header == "" || header == "*" {
			return nil
		}
		for _, tag := range strings.Split(header, ",") {
			if strings.TrimPrefix(strings.TrimSpace(tag), "W/") == etag(wh) {
				return nil
			}
		}
		return &apiError{Status: http.StatusPreconditionFailed, Code: codePreconditionFailed,
			Message: fmt.Sprintf("If-Match %s: the webhook is at version %d (ETag %s); read it again and send the change from there", header, wh.Version, etag(wh))}
	}
}

func (s *Server) updateWebhook(w http.ResponseWriter, r *http.Request) {
	in, aerr := readInput(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	matches := ifMatch(r)
	// The change is made from the webhook as it is when it is written; a
	// change that another writer made meanwhile (a PATCH, a 410 that
	// disabled the webhook) comes first and is kept.
	wasEnabled := false // as the webhook was before the change written
	wh, err := s.deps.Webhooks.ChangeWebhook(r.Context(), tenantOf(r), mux.Vars(r)["id"], func(ev *schemas.WebhookEvent) error {
		old := ev.Webhook
		wasEnabled = old.Enabled
		if err := matches(old); err != nil {
			return err
		}
		if aerr := applyInput(&in, &ev.Webhook, false); aerr != nil {
			return aerr
		}
		if reflect.DeepEqual(ev.Webhook, old) {
			return schemas.ErrUnchanged // no new version, no message on the topic
		}
		ev.Op, ev.At = schemas.OpUpdated, s.now()
		ev.Webhook.UpdatedAt = ev.At
		return nil
	})
	if s.changeFailed(w, r, err) {
		return
	}
	s.log.Info("api: webhook updated", "tenant", wh.Tenant, "webhook_id", wh.ID, "version", wh.Version)
	if wasEnabled && !wh.Enabled {
		s.failWaiting(wh, errWebhookDisabled, wh.UpdatedAt)
	}
	view := s.publicView(wh)
	if in.Events != nil {
		view.Warnings = schemas.CatalogueWarnings(wh.Events)
	}
	w.Header().Set("ETag", etag(wh))
	writeJSON(w, http.StatusOK, view)
}

func (s *Server) deleteWebhook(w http.ResponseWriter, r *http.Request) {
	matches := ifMatch(r)
	wh, err := s.deps.Webhooks.ChangeWebhook(r.Context(), tenantOf(r), mux.Vars(r)["id"], func(ev *schemas.WebhookEvent) error {
		if err := matches(ev.Webhook); err != nil {
			return err
		}
		ev.Op, ev.At = schemas.OpDeleted, s.now()
		ev.Webhook.UpdatedAt = ev.At
		return nil
	})
	if s.changeFailed(w, r, err) {
		return
	}
	s.log.Info("api: webhook deleted", "tenant", wh.Tenant, "webhook_id", wh.ID)
	s.failWaiting(wh, errWebhookDeleted, wh.UpdatedAt)
	w.WriteHeader(http.StatusNoContent)
}

// rotateRequest is the body of POST /v1/webhooks/{id}/rotate-secret; an
// empty body takes every default.
type rotateRequest struct {
	// Secret is the new secret; absent, Hookline generates one.
	Secret *string `json:"secret"`
	// OverlapSeconds is how long the old secret keeps signing beside the
	// new one. Default 86400.
	OverlapSeconds *int `json:"overlap_seconds"`
}

const (
	defaultOverlapSeconds = 86400
	maxOverlapSeconds     = 30 * 86400
)

// rotateSecret gives a webhook a new secret; the old one keeps signing
// (a second v1 entry of webhook-signature) for the overlap, so receivers
// can switch without losing a delivery.
func (s *Server) rotateSecret(w http.ResponseWriter, r *http.Request) {
	var in rotateRequest
	if aerr := s.optionalBody(r, &in); aerr != nil {
		writeError(w, aerr)
		return
	}
	overlap := defaultOverlapSeconds
	if in.OverlapSeconds != nil {
		overlap = *in.OverlapSeconds
	}
	if overlap < 0 || overlap > maxOverlapSeconds {
		writeError(w, invalid("overlap_seconds", "must be between 0 and %d", maxOverlapSeconds))
		return
	}
	secret, generated := schemas.GenerateSecret(), in.Secret == nil
	if !generated {
		secret = *in.Secret
	}
	if strings.TrimSpace(secret) == "" {
		writeError(w, invalid("secret", "must not be empty; PATCH with \"secret\": null makes the webhook unsigned"))
		return
	}
	wh, err := s.deps.Webhooks.ChangeWebhook(r.Context(), tenantOf(r), mux.Vars(r)["id"], func(ev *schemas.WebhookEvent) error {
		ev.Op, ev.At = schemas.OpUpdated, s.now()
		ev.Webhook.RotateSecret(secret, time.Duration(overlap)*time.Second, ev.At)
		ev.Webhook.UpdatedAt = ev.At
		if err := ev.Webhook.Validate(); err != nil {
			if aerr, ok := fieldError(err, ""); ok {
				return aerr
			}
			return invalid("secret", "%s", err.Error())
		}
		return nil
	})
	if s.changeFailed(w, r, err) {
		return
	}
	s.log.Info("api: webhook secret rotated", "tenant", wh.Tenant, "webhook_id", wh.ID, "overlap_seconds", overlap)
	view := s.publicView(wh)
	if generated {
		view.Secret = wh.Secret // shown this once
	}
	writeJSON(w, http.StatusOK, view)
}

// eventTypes answers the event catalogue.
func (s *Server) eventTypes(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, schemas.EventCatalogue())
}

// changeFailed answers a webhook change that failed, and reports whether
// it did.
func (s *Server) changeFailed(w http.ResponseWriter, r *http.Request, err error) bool {
	var aerr *apiError
	switch {
	case err == nil:
		return false
	case errors.As(err, &aerr):
		writeError(w, aerr)
	case errors.Is(err, schemas.ErrWebhookNotFound):
		writeError(w, notFound("webhook"))
	case errors.Is(err, schemas.ErrVersionConflict):
		writeError(w, &apiError{Status: http.StatusConflict, Code: codeConflict,
			Message: "the webhook kept changing while this change was made; send it again"})
	default:
		s.dependencyFailed(w, r, "publish webhook", err)
	}
	return true
}

// webhookFilter is the parsed query of GET /v1/webhooks.
type webhookFilter struct {
	names     map[string]bool
	enabled   *bool
	eventType string
	resource  string
	after     string // the last id of the previous page
	limit     int
}

func parseWebhookFilter(r *http.Request) (webhookFilter, *apiError) {
	var f webhookFilter
	q, aerr := parseQuery(r.URL.RawQuery, []string{"name", "enabled", "event", "resource", "limit", "cursor"}, "name")
	if aerr != nil {
		return f, aerr
	}
	if f.limit, aerr = q.limit(); aerr != nil {
		return f, aerr
	}
	if raw, ok := q.values["name"]; ok {
		f.names = map[string]bool{}
		for _, v := range raw {
			for n := range strings.SplitSeq(v, ",") {
				if n = strings.TrimSpace(n); n != "" {
					f.names[n] = true
				}
			}
		}
		if len(f.names) == 0 {
			return f, invalid("name", "must name at least one webhook")
		}
	}
	enabled, given, aerr := q.bool("enabled")
	if aerr != nil {
		return f, aerr
	}
	if given {
		f.enabled = &enabled
	}
	if v, ok := q.get("event"); ok {
		if !schemas.ValidEventPattern(v) || strings.Contains(v, "*") {
			return f, invalid("event", "must be an event type such as ticket.created")
		}
		f.eventType = v
	}
	if v, ok := q.get("resource"); ok {
		if v == "" || strings.ContainsAny(v, ".* \t") {
			return f, invalid("resource", "must be one resource word such as ticket")
		}
		f.resource = v
	}
	if v, ok := q.get("cursor"); ok {
		after, ok := decodeCursor(v)
		if !ok {
			return f, invalid("cursor", "is not a cursor from a previous page")
		}
		f.after = after
	}
	return f, nil
}

func (f *webhookFilter) matches(w schemas.Webhook) bool {
	switch {
	case f.names != nil && !f.names[w.Name]:
		return false
	case f.enabled != nil && w.Enabled != *f.enabled:
		return false
	case f.eventType != "" && !schemas.TypeMatches(w.Events, f.eventType):
		return false
	case f.resource != "" && !schemas.ResourceMatches(w.Events, f.resource):
		return false
	}
	return true
}

// listWebhooks pages by id: the cursor is the last id of the page, so a
// webhook created or deleted between pages never makes another one skipped
// or repeated.
func (s *Server) listWebhooks(w http.ResponseWriter, r *http.Request) {
	f, aerr := parseWebhookFilter(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	tenant := tenantOf(r)
	all := s.deps.Webhooks.Webhooks(tenant)
	byID := func(a, b schemas.Webhook) int { return strings.Compare(a.ID, b.ID) }
	if !slices.IsSortedFunc(all, byID) {
		all = slices.SortedFunc(slices.Values(all), byID)
	}
	out := list[schemas.PublicWebhook]{Data: []schemas.PublicWebhook{}}
	for _, wh := range all {
		if wh.Tenant != tenant || wh.ID <= f.after || !f.matches(wh) {
			continue
		}
		if len(out.Data) == f.limit {
			last := out.Data[len(out.Data)-1].ID
			out.NextCursor = encodeCursor(last)
			break
		}
		out.Data = append(out.Data, s.publicView(wh))
	}
	writeJSON(w, http.StatusOK, out)
}
