package embedded

import (
	"fmt"

	"github.com/klauspost/compress/s2"
)

// An attempt's value in the attempts bucket is its record's JSON, kept
// compressed with S2 behind a zero byte (valueS2). Files written before
// compression hold the plain JSON, which begins with '{'; both are read.
//
// Why: an attempt of 1 KiB data is a 2.3 KB record, so a 4 KiB page held
// one, and the file grew by 4.7 KB an attempt, all of it written and, as
// bbolt maps the file, counted in the process's memory. S2 (the fastest
// codec of klauspost/compress, already in the module graph through
// kafka-go) brings a record to about a third for a few microseconds,
// less than the page writes it saves (BenchmarkInsertRecords1KiB).
const valueS2 = 0x00

// packValue is the stored form of a record's JSON. It returns a new slice:
// bbolt keeps the value until the transaction commits.
func packValue(json []byte) []byte {
	dst := make([]byte, 1+s2.MaxEncodedLen(len(json)))
	dst[0] = valueS2
	return dst[:1+len(s2.Encode(dst[1:], json))]
}

// unpackValue returns the JSON of a stored value.
func unpackValue(v []byte) ([]byte, error) {
	if len(v) == 0 || v[0] != valueS2 {
		return v, nil // plain JSON, as written before compression
	}
	json, err := s2.Decode(nil, v[1:])
	if err != nil {
		return nil, fmt.Errorf("embedded: decompress attempt: %w", err)
	}
	return json, nil
}
