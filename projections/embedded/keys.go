package embedded

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/hookline/hookline/schemas"
)

// Layout of the file (layoutVersion):
//
//	attempts: tenant 0x00 webhook_id 0x00 delivery_id 0x00 n (uint32) → attempt JSON (packed, value.go)
//	index:    tenant 0x00 delivery_id → webhook_id 0x00 hour (uint32) n (uint32) state
//	days:     day (uint32) attempt key → status_code (int32) duration_ms (int64)
//	stats:    tenant 0x00 webhook_id 0x00 hour (uint32) → aggregate (aggregate.go)
//	meta:     "layout" → version (uint32)
//
// Integers are big endian, so that they sort by value. The 0x00 separators
// keep byte order equal to the order of the strings (a shorter id sorts
// before any longer one that starts with it), so a webhook's deliveries are
// one contiguous range sorted by id, and the attempts of a delivery follow
// each other in order of n.
//
// An index entry records, besides the delivery's webhook, the hour it was
// created (the stats bucket it counts in, fixed by its first stored attempt)
// and its highest stored attempt's n and state, so that an insert knows
// without reading attempts whether the delivery changes state. days lets
// retention find a day's attempts without a scan; its value is what
// retention must subtract from the stats.
//
// A pending mark is stored as the delivery's record n 0, so it sorts first
// among its records: a delivery has one, the latest written. It takes part
// in the index (a delivery with nothing else is pending) and in days (for
// retention), never in the stats' attempt counts and latencies.
var (
	bucketAttempts = []byte("attempts")
	bucketIndex    = []byte("index")
	bucketDays     = []byte("days")
	bucketStats    = []byte("stats")
	bucketMeta     = []byte("meta")
	keyLayout      = []byte("layout")
)

// layoutVersion is the layout this code writes. Version 1 had only attempts
// and index (holding just the webhook id); Open rebuilds the rest.
const layoutVersion = 2

const sep = 0x00

func joinKey(parts ...string) []byte {
	n := len(parts)
	for _, p := range parts {
		n += len(p)
	}
	k := make([]byte, 0, n+4)
	for _, p := range parts {
		k = append(k, p...)
		k = append(k, sep)
	}
	return k
}

// webhookPrefix starts every attempt key of a webhook.
func webhookPrefix(tenant, webhook string) []byte { return joinKey(tenant, webhook) }

// deliveryPrefix starts every attempt key of a delivery.
func deliveryPrefix(tenant, webhook, delivery string) []byte {
	return joinKey(tenant, webhook, delivery)
}

func attemptKey(a schemas.Attempt) []byte {
	return binary.BigEndian.AppendUint32(deliveryPrefix(a.Tenant, a.WebhookID, a.DeliveryID), uint32(a.N))
}

// isMark reports whether an attempt key is a delivery's pending mark (n 0).
func isMark(attemptKey []byte) bool {
	return len(attemptKey) >= 4 && binary.BigEndian.Uint32(attemptKey[len(attemptKey)-4:]) == 0
}

func indexKey(tenant, delivery string) []byte {
	return append(joinKey(tenant), delivery...)
}

// deliveryOf returns the delivery prefix of an attempt key: the key without
// its n.
func deliveryOf(attemptKey []byte) []byte {
	if len(attemptKey) < 4 {
		return attemptKey
	}
	return attemptKey[:len(attemptKey)-4]
}

// keyable reports whether ids from a query can name stored keys: an id
// with a NUL would reach across key boundaries.
func keyable(ids ...string) bool {
	for _, id := range ids {
		if strings.IndexByte(id, sep) >= 0 {
			return false
		}
	}
	return true
}

// checkKeys refuses an attempt that cannot be keyed.
func checkKeys(a schemas.Attempt) error {
	switch {
	case a.Tenant == "" || a.WebhookID == "" || a.DeliveryID == "":
		return fmt.Errorf("embedded: attempt %d of delivery %q lacks tenant, webhook id or delivery id", a.N, a.DeliveryID)
	case strings.ContainsRune(a.Tenant+a.WebhookID+a.DeliveryID, sep):
		return fmt.Errorf("embedded: delivery %q: ids must not contain NUL", a.DeliveryID)
	case a.N < 0 || int64(a.N) > int64(^uint32(0)):
		return fmt.Errorf("embedded: delivery %q: attempt number %d out of range", a.DeliveryID, a.N)
	}
	return nil
}

// splitAttemptKey reads tenant, webhook and delivery back from an attempt
// key.
func splitAttemptKey(key []byte) (tenant, webhook, delivery string, ok bool) {
	if len(key) < 4 {
		return "", "", "", false
	}
	parts := bytes.Split(deliveryOf(key), []byte{sep})
	if len(parts) != 4 || len(parts[3]) != 0 {
		return "", "", "", false
	}
	return string(parts[0]), string(parts[1]), string(parts[2]), true
}

// hourOf and dayOf count whole hours and days since 1970 in UTC, clamped to
// what a uint32 holds.
func hourOf(t time.Time) uint32 { return unitsOf(t, 3600) }
func dayOf(t time.Time) uint32  { return unitsOf(t, 86400) }

func unitsOf(t time.Time, seconds int64) uint32 {
	s := t.Unix()
	if s <= 0 {
		return 0
	}
	return uint32(min(s/seconds, math.MaxUint32))
}

// statsKey names the aggregate of a webhook's deliveries created in an hour.
func statsKey(tenant, webhook string, hour uint32) []byte {
	return binary.BigEndian.AppendUint32(webhookPrefix(tenant, webhook), hour)
}

func dayKey(day uint32, attemptKey []byte) []byte {
	return append(binary.BigEndian.AppendUint32(make([]byte, 0, 4+len(attemptKey)), day), attemptKey...)
}

// dayValue keeps what retention subtracts from the stats when it drops the
// attempt.
func dayValue(status int, durationMS int64) []byte {
	v := binary.BigEndian.AppendUint32(make([]byte, 0, 12), uint32(int32(status)))
	return binary.BigEndian.AppendUint64(v, uint64(durationMS))
}

func parseDayValue(v []byte) (status int, durationMS int64) {
	if len(v) != 12 {
		return 0, 0
	}
	return int(int32(binary.BigEndian.Uint32(v))), int64(binary.BigEndian.Uint64(v[4:]))
}

// record is an index entry: where a delivery lives and what it is now.
type record struct {
	webhook string
	hour    uint32 // of creation: the stats bucket it counts in
	n       uint32 // highest stored attempt
	state   string // of attempt n
}

func (r record) encode() []byte {
	v := append(append(make([]byte, 0, len(r.webhook)+9+len(r.state)), r.webhook...), sep)
	v = binary.BigEndian.AppendUint32(v, r.hour)
	v = binary.BigEndian.AppendUint32(v, r.n)
	return append(v, r.state...)
}

// parseRecord copies what it reads: bbolt values live only as long as the
// transaction, and a write may move them.
func parseRecord(v []byte) (record, bool) {
	i := bytes.IndexByte(v, sep)
	if i < 0 || len(v) < i+9 {
		return record{}, false
	}
	return record{
		webhook: string(v[:i]),
		hour:    binary.BigEndian.Uint32(v[i+1:]),
		n:       binary.BigEndian.Uint32(v[i+5:]),
		state:   string(v[i+9:]),
	}, true
}
