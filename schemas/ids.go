package schemas

import (
	"fmt"

	"github.com/google/uuid"
)

// NewID makes an id for a webhook, an event, a redelivery or a replay: a
// UUIDv7 string, so ids sort by creation time.
func NewID() string {
	id, err := uuid.NewV7()
	if err != nil {
		// NewV7 fails only when the system's random source does; a v4 id
		// is still unique, it only loses the time order.
		return uuid.NewString()
	}
	return id.String()
}

// eventNamespace derives ids for events published without one.
var eventNamespace = uuid.MustParse("6f1c8a8e-4a55-4c3e-9d0e-2f6a1c7b9e10")

// PositionEventID is the id of an event published without one: derived
// from its place on the topic, so that the matcher, and a replay reading it
// again, give it the same id.
func PositionEventID(topic string, partition int, offset int64) string {
	return uuid.NewSHA1(eventNamespace, fmt.Appendf(nil, "%s/%d/%d", topic, partition, offset)).String()
}
