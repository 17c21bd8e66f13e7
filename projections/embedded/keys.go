package embedded

import (
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/hookline/hookline/schemas"
)

// Layout of the file:
//
//	attempts: tenant 0x00 webhook_id 0x00 delivery_id 0x00 n (uint32, big endian) → attempt JSON
//	index:    tenant 0x00 delivery_id → webhook_id
//
// The 0x00 separators keep byte order equal to the order of the strings
// (a shorter id sorts before any longer one that starts with it), so a
// webhook's deliveries are one contiguous range sorted by id, and the
// attempts of a delivery follow each other in order of n.
var (
	bucketAttempts = []byte("attempts")
	bucketIndex    = []byte("index")
)

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

// idFrom returns the delivery id of a delivery prefix that follows a
// webhook prefix.
func idFrom(delivery, webhookPrefix []byte) string {
	return string(delivery[len(webhookPrefix) : len(delivery)-1])
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
	case a.N < 1 || int64(a.N) > int64(^uint32(0)):
		return fmt.Errorf("embedded: delivery %q: attempt number %d out of range", a.DeliveryID, a.N)
	}
	return nil
}
