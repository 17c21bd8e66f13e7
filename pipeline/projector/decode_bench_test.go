package projector

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/segmentio/kafka-go"
)

// BenchmarkDecode: a batch of 100 first attempts, each with a 1 KiB request
// body, decoded whole (Decode, for ClickHouse) or without their bodies
// (DecodeRecords, for the embedded store).
func BenchmarkDecode(b *testing.B) {
	msgs := make([]kafka.Message, 100)
	for i := range msgs {
		a := attempt(i, 1, "succeeded")
		a.RequestBody = `{"data":{"subject":"` + strings.Repeat(`Printer \"on\" fire `, 50) + `"}}`
		v, _ := json.Marshal(a)
		msgs[i] = kafka.Message{Value: v}
	}
	b.Run("Decode", func(b *testing.B) {
		for b.Loop() {
			Decode(msgs)
		}
	})
	b.Run("DecodeRecords", func(b *testing.B) {
		for b.Loop() {
			DecodeRecords(msgs)
		}
	})
}
