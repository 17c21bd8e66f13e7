package api

import (
	"net/http"
	"time"

	"github.com/hookline/hookline/projections"
)

// Series bounds: buckets are whole hours (the embedded store keeps hourly
// aggregates), at most a week of them per call.
const (
	seriesMinStep    = time.Hour
	seriesMaxBuckets = 168
	seriesDefault    = 24 * time.Hour
)

// seriesBucket is one bucket of GET /v1/webhooks/{id}/stats/series: the
// deliveries created in [start, start+step).
type seriesBucket struct {
	Start time.Time `json:"start"`
	projections.Stats
}

type seriesView struct {
	WebhookID string         `json:"webhook_id"`
	Since     time.Time      `json:"since"`
	Step      string         `json:"step"`
	Buckets   []seriesBucket `json:"buckets"`
}

// webhookStatsSeries answers the webhook's stats per bucket of step (whole
// hours, default 1h) from since (default 24 hours ago; both rounded down to
// the hour), for charts.
func (s *Server) webhookStatsSeries(w http.ResponseWriter, r *http.Request) {
	q, aerr := parseQuery(r.URL.RawQuery, []string{"since", "step"})
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	since, aerr := q.time("since")
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	now := s.now().UTC()
	if since.IsZero() {
		since = now.Add(-seriesDefault)
	}
	since = since.UTC().Truncate(time.Hour)
	step := seriesMinStep
	if v, ok := q.get("step"); ok {
		d, err := time.ParseDuration(v)
		if err != nil || d < seriesMinStep || d%time.Hour != 0 {
			writeError(w, invalid("step", "must be a whole number of hours, such as 1h or 24h"))
			return
		}
		step = d
	}
	if !since.Before(now) {
		writeError(w, invalid("since", "must be in the past"))
		return
	}
	n := int((now.Sub(since) + step - 1) / step)
	if n > seriesMaxBuckets {
		writeError(w, invalid("since", "with step %s spans %d buckets; at most %d (a later since or a longer step)", step, n, seriesMaxBuckets))
		return
	}
	wh, aerr := s.lookup(r)
	if aerr != nil {
		writeError(w, aerr)
		return
	}
	out := seriesView{WebhookID: wh.ID, Since: since, Step: step.String(), Buckets: make([]seriesBucket, 0, n)}
	for start := since; start.Before(now); start = start.Add(step) {
		st, err := s.deps.Deliveries.Stats(r.Context(), projections.StatsQuery{Tenant: wh.Tenant, WebhookID: wh.ID, Since: start, Until: start.Add(step)})
		if err != nil {
			s.dependencyFailed(w, r, "webhook stats series", err)
			return
		}
		out.Buckets = append(out.Buckets, seriesBucket{Start: start, Stats: st})
	}
	writeJSON(w, http.StatusOK, out)
}
