package clickhouse

import (
	"context"
	"encoding/json"
	"fmt"
	"math"

	"github.com/hookline/hookline/schemas"
)

// insertAttempts names its columns so that a column added by a later
// migration, with a default, does not break older writers.
const insertAttempts = `INSERT INTO attempts (tenant, webhook_id, delivery_id, n, state, at, at_ms,
	delivery_created_ms, event_ids, event_type, status_code, duration_ms, error, url,
	request_headers, request_body, response_headers, response_body, redelivery_of, replay_id)`

// InsertAttempts sends the batch as one insert. A repeated attempt becomes
// a second row that reads ignore and merges fold away.
func (s *Store) InsertAttempts(ctx context.Context, attempts []schemas.Attempt) error {
	if len(attempts) == 0 {
		return nil
	}
	rows := make([][]any, len(attempts))
	for i, a := range attempts {
		row, err := rowOf(a)
		if err != nil {
			return err
		}
		rows[i] = row
	}
	batch, err := s.conn.PrepareBatch(ctx, insertAttempts)
	if err != nil {
		return fmt.Errorf("clickhouse: prepare insert: %w", err)
	}
	for _, row := range rows {
		if err := batch.Append(row...); err != nil {
			_ = batch.Abort()
			return fmt.Errorf("clickhouse: append attempt: %w", err)
		}
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("clickhouse: insert %d attempts: %w", len(rows), err)
	}
	return nil
}

// rowOf lays an attempt out in the order of insertAttempts.
func rowOf(a schemas.Attempt) ([]any, error) {
	if a.Tenant == "" || a.WebhookID == "" || a.DeliveryID == "" {
		return nil, fmt.Errorf("clickhouse: attempt %d of delivery %q lacks tenant, webhook id or delivery id", a.N, a.DeliveryID)
	}
	if a.N < 1 || int64(a.N) > math.MaxUint32 {
		return nil, fmt.Errorf("clickhouse: delivery %q: attempt number %d out of range", a.DeliveryID, a.N)
	}
	reqHeaders, err := json.Marshal(a.RequestHeaders)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: encode request headers: %w", err)
	}
	respHeaders, err := json.Marshal(a.ResponseHeaders)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: encode response headers: %w", err)
	}
	eventIDs := a.EventIDs
	if eventIDs == nil {
		eventIDs = []string{}
	}
	// at only partitions the table; DateTime holds 1970 to 2106.
	atSeconds := min(max(a.At.Unix(), 0), math.MaxUint32)
	return []any{
		a.Tenant, a.WebhookID, a.DeliveryID, uint32(a.N), a.State, atSeconds, a.At.UnixMilli(),
		a.DeliveryCreatedAt.UnixMilli(), eventIDs, a.EventType, int32(a.StatusCode), a.DurationMS, a.Error, a.URL,
		string(reqHeaders), a.RequestBody, string(respHeaders), a.ResponseBody, a.RedeliveryOf, a.ReplayID,
	}, nil
}
