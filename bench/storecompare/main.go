// Command storecompare measures, for issue 23, the embedded attempts
// store's insert on bbolt (Hookline's own ledger, embedded.Store) against
// the same writes on pebble, a log-structured engine: CPU and wall time an
// attempt and disk bytes an attempt, in batches like the projector's. It
// is not a pebble driver: pebbleInsert does the ledger's reads and writes
// (the index read of each attempt, the attempt, the index, the day entry,
// each stats key once a batch) and nothing else; BLIND=1 leaves out the
// index reads. A module of its own, so that pebble stays out of
// Hookline's.
//
//	cd bench/storecompare && go run . -engine bbolt && go run . -engine pebble
package main

import (
	"context"
	"encoding/binary"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/klauspost/compress/s2"

	"github.com/hookline/hookline/pipeline/records"
	"github.com/hookline/hookline/projections"
	"github.com/hookline/hookline/projections/embedded"
	"github.com/hookline/hookline/schemas"
)

func attempt(seq int, at time.Time) schemas.Attempt {
	id := fmt.Sprintf("019%05x-%04x-7000-8000-%012d", seq/4096, seq%4096, seq)
	body := `{"id":"` + id + `","event_type":"ticket.updated","data":{"seq":` + fmt.Sprint(seq) + `,"subject":"Printer on fire","description":"` + strings.Repeat("The printer on the fourth floor smells of smoke again. ", 16) + `"}}`
	return schemas.Attempt{
		DeliveryID: id, WebhookID: fmt.Sprintf("wh_%02d", seq%50), Tenant: "default", EventIDs: []string{fmt.Sprint("ev-", seq)},
		EventType: "ticket.updated", N: 1, State: schemas.StateSucceeded,
		At: at, DeliveryCreatedAt: at, StatusCode: 204, DurationMS: 2, URL: "http://127.0.0.1:8090/hooks",
		RequestHeaders: map[string]string{"Content-Type": "application/json", "Webhook-Id": id, "X-Hookline-Attempt": "1"},
		RequestBody:    body,
	}
}

func cpu() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func dirBytes(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, _ error) error {
		if fi != nil && !fi.IsDir() {
			n += fi.Size()
		}
		return nil
	})
	return n
}

func main() {
	engine := flag.String("engine", "bbolt", "bbolt or pebble")
	total := flag.Int("n", 200000, "attempts")
	batch := flag.Int("batch", 5000, "attempts a transaction")
	flag.Parse()
	dir, _ := os.MkdirTemp("", "store-")
	defer os.RemoveAll(dir)
	start := time.Now().Add(-time.Hour)
	recs := make([]projections.Record, *total)
	for i := range recs {
		a := attempt(i, start.Add(time.Duration(i)*time.Millisecond))
		v, _ := records.Marshal(a)
		recs[i] = projections.Record{Attempt: a, JSON: v}
	}
	var insert func([]projections.Record) error
	switch *engine {
	case "bbolt":
		s, err := embedded.Open(filepath.Join(dir, "attempts.db"))
		if err != nil {
			panic(err)
		}
		defer s.Close()
		insert = func(r []projections.Record) error { return s.InsertRecords(context.Background(), r) }
	case "pebble":
		db, err := pebble.Open(dir, &pebble.Options{MemTableSize: 16 << 20})
		if err != nil {
			panic(err)
		}
		defer db.Close()
		insert = func(rs []projections.Record) error { return pebbleInsert(db, rs) }
	}
	c0, t0 := cpu(), time.Now()
	for i := 0; i < len(recs); i += *batch {
		if err := insert(recs[i:min(i+*batch, len(recs))]); err != nil {
			panic(err)
		}
	}
	c1, t1 := cpu(), time.Now()
	fmt.Printf("%s n=%d batch=%d cpu/attempt=%.2fus wall/attempt=%.2fus disk/attempt=%d\n", *engine, *total, *batch,
		float64((c1-c0).Nanoseconds())/float64(*total)/1000, float64(t1.Sub(t0).Nanoseconds())/float64(*total)/1000, dirBytes(dir)/int64(*total))
}

// pebbleInsert does the ledger's writes on pebble: the index read (is the
// attempt new, does the delivery change state), the attempt, the index,
// the day entry, and each stats key once a batch (read, add, write).
func pebbleInsert(db *pebble.DB, rs []projections.Record) error {
	b := db.NewIndexedBatch()
	stats := map[string]int64{}
	for _, r := range rs {
		a := r.Attempt
		ik := []byte("i" + a.Tenant + "\x00" + a.DeliveryID)
		if os.Getenv("BLIND") == "" {
			if v, closer, err := b.Get(ik); err == nil {
				_ = v
				closer.Close()
			}
		}
		ak := []byte("a" + a.Tenant + "\x00" + a.WebhookID + "\x00" + a.DeliveryID + "\x00")
		ak = binary.BigEndian.AppendUint32(ak, uint32(a.N))
		dst := make([]byte, 1+s2.MaxEncodedLen(len(r.JSON)))
		packed := dst[:1+len(s2.Encode(dst[1:], r.JSON))]
		b.Set(ak, packed, nil)
		b.Set(ik, binary.BigEndian.AppendUint32([]byte(a.WebhookID+"\x00"), uint32(a.N)), nil)
		dk := binary.BigEndian.AppendUint32([]byte("d"), uint32(a.At.Unix()/86400))
		b.Set(append(dk, ak...), binary.BigEndian.AppendUint64(nil, uint64(a.DurationMS)), nil)
		stats["s"+a.Tenant+"\x00"+a.WebhookID+"\x00"+fmt.Sprint(a.At.Unix()/3600)]++
	}
	for k, n := range stats {
		var cur int64
		if v, closer, err := b.Get([]byte(k)); err == nil {
			cur = int64(binary.BigEndian.Uint64(v))
			closer.Close()
		}
		b.Set([]byte(k), binary.BigEndian.AppendUint64(nil, uint64(cur+n)), nil)
	}
	return b.Commit(pebble.Sync)
}
