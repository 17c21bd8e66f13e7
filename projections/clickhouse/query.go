package clickhouse

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/hookline/hookline/projections"
	"github.com/hookline/hookline/schemas"
)

// Page sizes (projections.DeliveryQuery.Limit).
const (
	defaultLimit = 50
	maxLimit     = 500
)

// selectDelivery reads one delivery's records, once each (the latest of a
// repeated n: a pending mark written again wins by its later at). The
// delivery index turns the lookup by id into a primary-key range of
// attempts.
const selectDelivery = `SELECT tenant, webhook_id, delivery_id, n, state, at_ms, delivery_created_ms,
	event_ids, event_type, status_code, duration_ms, error, url,
	request_headers, request_body, response_headers, response_body, redelivery_of, replay_id,
	next_attempt_ms
FROM attempts
WHERE tenant = ? AND delivery_id = ?
	AND webhook_id IN (SELECT webhook_id FROM delivery_index WHERE tenant = ? AND delivery_id = ?)
ORDER BY n, at_ms DESC
LIMIT 1 BY n`

// GetDelivery reads every attempt of one delivery.
func (s *Store) GetDelivery(ctx context.Context, tenant, id string) (projections.Delivery, error) {
	rows, err := s.conn.Query(ctx, selectDelivery, tenant, id, tenant, id)
	if err != nil {
		return projections.Delivery{}, fmt.Errorf("clickhouse: get delivery: %w", err)
	}
	defer rows.Close()
	var attempts []schemas.Attempt
	for rows.Next() {
		a, err := scanAttempt(rows)
		if err != nil {
			return projections.Delivery{}, err
		}
		attempts = append(attempts, a)
	}
	if err := rows.Err(); err != nil {
		return projections.Delivery{}, fmt.Errorf("clickhouse: get delivery: %w", err)
	}
	d, ok := projections.Derive(attempts, true)
	if !ok {
		return projections.Delivery{}, projections.ErrNotFound
	}
	return d, nil
}

func scanAttempt(rows driver.Rows) (schemas.Attempt, error) {
	var (
		a                       schemas.Attempt
		n                       uint32
		atMS, createdMS, nextMS int64
		status                  int32
		reqHeaders, respHeader  string
	)
	err := rows.Scan(&a.Tenant, &a.WebhookID, &a.DeliveryID, &n, &a.State, &atMS, &createdMS,
		&a.EventIDs, &a.EventType, &status, &a.DurationMS, &a.Error, &a.URL,
		&reqHeaders, &a.RequestBody, &respHeader, &a.ResponseBody, &a.RedeliveryOf, &a.ReplayID, &nextMS)
	if err != nil {
		return a, fmt.Errorf("clickhouse: read attempt: %w", err)
	}
	a.N, a.StatusCode = int(n), int(status)
	a.At, a.DeliveryCreatedAt, a.NextAttemptAt = fromMillis(atMS), fromMillis(createdMS), optionalMillis(nextMS)
	if a.RequestHeaders, err = decodeHeaders(reqHeaders); err != nil {
		return a, err
	}
	a.ResponseHeaders, err = decodeHeaders(respHeader)
	return a, err
}

func decodeHeaders(s string) (map[string]string, error) {
	if s == "" || s == "null" {
		return nil, nil
	}
	var h map[string]string
	if err := json.Unmarshal([]byte(s), &h); err != nil {
		return nil, fmt.Errorf("clickhouse: decode headers: %w", err)
	}
	return h, nil
}

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// optionalMillis reads a column where 0 stands for none.
func optionalMillis(ms int64) *time.Time {
	if ms == 0 {
		return nil
	}
	t := fromMillis(ms)
	return &t
}

// listDeliveries folds each delivery's records into one row, as Derive
// does: the fields of its highest record (argMax by n), the creation time
// of its lowest, the number of distinct attempts (n > 0: a pending mark is
// none), which a repeated row does not change, and the at and
// next_attempt_ms of its latest record, the later of its highest attempt
// and its latest mark (the highest on a tie; the mark when it has nothing
// else). It reads the wide columns only for the page's deliveries, which
// pageIDs (appended by listQuery) picks with narrow ones: grouping a whole
// webhook with every column took twice as long.
const listDeliveries = `SELECT delivery_id,
	argMax(webhook_id, n), argMax(event_ids, n), argMax(event_type, n),
	argMax(state, n), argMax(status_code, n),
	argMin(delivery_created_ms, n),
	argMax(url, n), argMax(redelivery_of, n), argMax(replay_id, n), uniqExactIf(n, n > 0),
	max(n) = 0 OR maxIf(at_ms, n = 0) > argMax(at_ms, n) AS mark_is_latest,
	if(mark_is_latest, maxIf(at_ms, n = 0), argMax(at_ms, n)),
	if(mark_is_latest, argMaxIf(next_attempt_ms, at_ms, n = 0), argMax(next_attempt_ms, n))
FROM attempts
WHERE tenant = ? AND webhook_id = ? AND delivery_id IN (`

// pageIDs starts the subquery that finds a page's delivery ids; listQuery
// adds the filters.
const pageIDs = `SELECT delivery_id
	FROM attempts
	WHERE tenant = ? AND webhook_id = ?`

// ListDeliveries answers a page with one query that asks for one row more
// than the page, to know whether a next page exists.
func (s *Store) ListDeliveries(ctx context.Context, q projections.DeliveryQuery) (projections.DeliveryPage, error) {
	limit := q.Limit
	switch {
	case limit < 1:
		limit = defaultLimit
	case limit > maxLimit:
		limit = maxLimit
	}
	query, args, ok := listQuery(q, limit+1)
	if !ok {
		return projections.DeliveryPage{}, nil
	}
	rows, err := s.conn.Query(ctx, query, args...)
	if err != nil {
		return projections.DeliveryPage{}, fmt.Errorf("clickhouse: list deliveries: %w", err)
	}
	defer rows.Close()
	var page projections.DeliveryPage
	for rows.Next() {
		d, err := scanListed(rows)
		if err != nil {
			return projections.DeliveryPage{}, err
		}
		page.Deliveries = append(page.Deliveries, d)
	}
	if err := rows.Err(); err != nil {
		return projections.DeliveryPage{}, fmt.Errorf("clickhouse: list deliveries: %w", err)
	}
	if len(page.Deliveries) > limit {
		page.Deliveries = page.Deliveries[:limit]
		page.NextCursor = page.Deliveries[limit-1].ID
	}
	return page, nil
}

// listQuery adds the query's filters as fixed SQL text with bound values.
// It reports false for a status filter no delivery can match. The filters
// on the delivery's own fields apply to its highest attempt (HAVING), like
// Derive, rather than to every row (WHERE), which would pick a lower
// attempt's values when attempts disagree.
func listQuery(q projections.DeliveryQuery, limit int) (string, []any, bool) {
	var b strings.Builder
	b.WriteString(listDeliveries)
	b.WriteString(pageIDs)
	args := []any{q.Tenant, q.WebhookID, q.Tenant, q.WebhookID}
	if q.Cursor != "" {
		b.WriteString("\n\t\tAND delivery_id < ?")
		args = append(args, q.Cursor)
	}
	b.WriteString("\n\tGROUP BY delivery_id")
	var having []string
	if q.State != "" {
		having = append(having, "argMax(state, n) = ?")
		args = append(args, q.State)
	}
	if q.EventType != "" {
		having = append(having, "argMax(event_type, n) = ?")
		args = append(args, q.EventType)
	}
	if q.Status != "" {
		lo, hi, ok := projections.StatusRange(q.Status)
		if !ok {
			return "", nil, false
		}
		// A delivery with no attempt (a pending mark alone) has no status.
		having = append(having, "max(n) > 0 AND argMax(status_code, n) >= ? AND argMax(status_code, n) < ?")
		args = append(args, int32(lo), int32(hi))
	}
	// Stored times are whole milliseconds: t >= since holds exactly when
	// t >= since rounded up, and t < until when t < until rounded up.
	if !q.Since.IsZero() {
		having = append(having, "argMin(delivery_created_ms, n) >= ?")
		args = append(args, ceilMillis(q.Since))
	}
	if !q.Until.IsZero() {
		having = append(having, "argMin(delivery_created_ms, n) < ?")
		args = append(args, ceilMillis(q.Until))
	}
	if len(having) > 0 {
		b.WriteString("\n\tHAVING " + strings.Join(having, " AND "))
	}
	b.WriteString("\n\tORDER BY delivery_id DESC\n\tLIMIT ?)\nGROUP BY delivery_id\nORDER BY delivery_id DESC")
	return b.String(), append(args, limit), true
}

func ceilMillis(t time.Time) int64 {
	ms := t.UnixMilli()
	if t.After(time.UnixMilli(ms)) {
		ms++
	}
	return ms
}

func scanListed(rows driver.Rows) (projections.Delivery, error) {
	var (
		last                    schemas.Attempt
		status                  int32
		atMS, createdMS, nextMS int64
		count                   uint64
		markIsLatest            uint8
	)
	err := rows.Scan(&last.DeliveryID, &last.WebhookID, &last.EventIDs, &last.EventType,
		&last.State, &status, &createdMS, &last.URL, &last.RedeliveryOf, &last.ReplayID, &count,
		&markIsLatest, &atMS, &nextMS)
	if err != nil {
		return projections.Delivery{}, fmt.Errorf("clickhouse: read delivery: %w", err)
	}
	// last stands for the latest record: Derive takes its at and next
	// attempt, and the state and status of the highest, which it carries.
	last.StatusCode = int(status)
	last.At, last.DeliveryCreatedAt, last.NextAttemptAt = fromMillis(atMS), fromMillis(createdMS), optionalMillis(nextMS)
	d, _ := projections.Derive([]schemas.Attempt{last}, false)
	d.AttemptCount = int(count)
	return d, nil
}
