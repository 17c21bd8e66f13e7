package embedded

import (
	"bytes"
	"context"

	bolt "go.etcd.io/bbolt"

	"github.com/hookline/hookline/projections"
)

// Stats adds up the webhook's hourly aggregates from Since's hour on, which
// the inserts keep current: it reads one small record per hour, never an
// attempt. Since and Until are therefore rounded down to the hour:
// deliveries created in Since's hour but before Since count too, and those
// of Until's hour before Until do not. Percentiles come from the
// aggregates' histogram (see latencyBucket): exact below 64 ms, within
// 1.6 % above.
func (s *Store) Stats(ctx context.Context, q projections.StatsQuery) (projections.Stats, error) {
	st := projections.EmptyStats()
	if err := ctx.Err(); err != nil {
		return st, err
	}
	if !keyable(q.Tenant, q.WebhookID) {
		return st, nil
	}
	total := newAggregate()
	err := s.db.View(func(tx *bolt.Tx) error {
		prefix := webhookPrefix(q.Tenant, q.WebhookID)
		c := tx.Bucket(bucketStats).Cursor()
		var stop []byte
		if !q.Until.IsZero() {
			stop = statsKey(q.Tenant, q.WebhookID, hourOf(q.Until))
		}
		for k, v := c.Seek(statsKey(q.Tenant, q.WebhookID, hourOf(q.Since))); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			if stop != nil && bytes.Compare(k, stop) >= 0 {
				break
			}
			if err := decodeInto(total, v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return projections.Stats{}, err
	}
	for state, n := range total.states {
		st.Deliveries[state] += n
	}
	for i, n := range total.classes {
		st.Attempts[classNames[i]] += n
	}
	st.SuccessRate = projections.SuccessRate(st.Deliveries)
	st.LatencyMS = projections.Percentiles{P50: total.percentile(0.5), P95: total.percentile(0.95), P99: total.percentile(0.99)}
	return st, nil
}
