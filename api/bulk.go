package api

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/hookline/hookline/schemas"
)

// Bulk actions on webhooks (SPEC §5, the BMS grid).
const (
	bulkDelete  = "delete"
	bulkEnable  = "enable"
	bulkDisable = "disable"
	maxBulkIDs  = 1000
)

type bulkInput struct {
	Action string   `json:"action"`
	IDs    []string `json:"ids"`
}

// bulkResult is the outcome of the action on one id: status as the
// single-webhook call would answer it (200, 204 for a delete, 404, 409),
// with the error's code and message when it failed.
type bulkResult struct {
	ID      string `json:"id"`
	Status  int    `json:"status"`
	Code    string `json:"code,omitempty"`
	Message string `json:"message,omitempty"`
}

type bulkOutput struct {
	Results   []bulkResult `json:"results"`
	Succeeded int          `json:"succeeded"`
	Failed    int          `json:"failed"`
}

// bulkWebhooks applies one action to each id of the caller's tenant, one
// change at a time through the same path as PATCH and DELETE, and answers
// 200 with a result per id: one failing id does not stop the others.
func (s *Server) bulkWebhooks(w http.ResponseWriter, r *http.Request) {
	var in bulkInput
	body, aerr := readBody(r)
	if aerr == nil {
		aerr = decodeObject(body, &in, "")
	}
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	switch in.Action {
	case bulkDelete, bulkEnable, bulkDisable:
	default:
		writeError(w, invalid("action", "must be delete, enable or disable"))
		return
	}
	if len(in.IDs) == 0 || len(in.IDs) > maxBulkIDs {
		writeError(w, invalid("ids", "must list 1 to %d webhook ids", maxBulkIDs))
		return
	}
	seen := map[string]bool{}
	for i, id := range in.IDs {
		if id == "" || seen[id] {
			writeError(w, invalid(fmt.Sprintf("ids[%d]", i), "must be a webhook id, each once"))
			return
		}
		seen[id] = true
	}
	out := bulkOutput{Results: make([]bulkResult, 0, len(in.IDs))}
	for _, id := range in.IDs {
		res := s.bulkOne(r, in.Action, id)
		if res.Status < 300 {
			out.Succeeded++
		} else {
			out.Failed++
		}
		out.Results = append(out.Results, res)
	}
	s.log.Info("api: bulk webhook action", "tenant", tenantOf(r), "action", in.Action, "succeeded", out.Succeeded, "failed", out.Failed)
	writeJSON(w, http.StatusOK, out)
}

func (s *Server) bulkOne(r *http.Request, action, id string) bulkResult {
	changed := false // by the change written
	wh, err := s.deps.Webhooks.ChangeWebhook(r.Context(), tenantOf(r), id, func(ev *schemas.WebhookEvent) error {
		changed = false
		ev.At = s.now()
		ev.Webhook.UpdatedAt = ev.At
		switch action {
		case bulkDelete:
			ev.Op = schemas.OpDeleted
			changed = true
			return nil
		case bulkEnable:
			if ev.Webhook.Enabled {
				return schemas.ErrUnchanged
			}
			ev.Webhook.Enabled, ev.Webhook.DisabledReason = true, ""
		default:
			if !ev.Webhook.Enabled {
				return schemas.ErrUnchanged
			}
			ev.Webhook.Enabled = false
		}
		ev.Op = schemas.OpUpdated
		changed = true
		return nil
	})
	res := bulkResult{ID: id, Status: http.StatusOK}
	if action == bulkDelete {
		res.Status = http.StatusNoContent
	}
	var aerr *apiError
	switch {
	case err == nil && changed && action == bulkDelete:
		s.failWaiting(wh, errWebhookDeleted, wh.UpdatedAt)
	case err == nil && changed && action == bulkDisable:
		s.failWaiting(wh, errWebhookDisabled, wh.UpdatedAt)
	case err == nil:
	case errors.Is(err, schemas.ErrWebhookNotFound):
		res.Status, res.Code, res.Message = http.StatusNotFound, codeNotFound, "webhook not found"
	case errors.Is(err, schemas.ErrVersionConflict):
		res.Status, res.Code, res.Message = http.StatusConflict, codeConflict, "the webhook kept changing while this change was made; send it again"
	case errors.As(err, &aerr):
		res.Status, res.Code, res.Message = aerr.Status, aerr.Code, aerr.Message
	default:
		s.log.Error("api: bulk webhook action", "webhook_id", id, "err", err)
		res.Status, res.Code, res.Message = http.StatusServiceUnavailable, codeUnavailable, "the change could not be written; send it again"
	}
	return res
}
