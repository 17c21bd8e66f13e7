package clickhouse

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"

	"github.com/hookline/hookline/projections"
	"github.com/hookline/hookline/projections/storetest"
	"github.com/hookline/hookline/schemas"
)

func TestAddColumnMatchesOnlyAddColumn(t *testing.T) {
	migrations, err := loadMigrations(schemas.ClickHouseMigrations)
	if err != nil {
		t.Fatal(err)
	}
	matched := map[string]bool{}
	for _, m := range migrations {
		for _, stmt := range m.statements {
			if g := addColumn.FindStringSubmatch(stmt); g != nil {
				matched[g[1]+"."+g[2]] = true
			} else if strings.Contains(strings.ToUpper(stmt), "ADD COLUMN") {
				t.Errorf("%s: an ADD COLUMN the pattern misses, so that it would run twice: %s", m.name, stmt)
			}
		}
	}
	if !matched["attempts.next_attempt_ms"] {
		t.Errorf("matched %v; want attempts.next_attempt_ms", matched)
	}
	for _, stmt := range []string{"CREATE TABLE IF NOT EXISTS attempts (n UInt32) ENGINE = Memory", "ALTER TABLE attempts DROP PARTITION 20260304"} {
		if addColumn.MatchString(stmt) {
			t.Errorf("addColumn matches %q", stmt)
		}
	}
}

// openRaw connects to a fresh database of the test server without
// migrating it.
func openRaw(t *testing.T) *Store {
	t.Helper()
	opts, err := parseDSN(storetest.ClickHouseDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := createDatabase(t.Context(), *opts); err != nil {
		t.Fatal(err)
	}
	conn, err := ch.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &Store{conn: conn}
}

// TestMigrationsRunTwiceAtOnce: two processes starting together both
// apply every migration, 18.16's ALTER TABLE … ADD COLUMN included, and
// both succeed; so does a third, later, that finds the column there but
// its version unrecorded (a run cut short).
func TestMigrationsRunTwiceAtOnce(t *testing.T) {
	storetest.ClickHouseDSN(t)
	s := openRaw(t)
	ctx := t.Context()
	var wg sync.WaitGroup
	errs := make([]error, 2)
	for i := range errs {
		wg.Go(func() { errs[i] = migrate(ctx, s.conn) })
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("migration %d: %v", i, err)
		}
	}
	if err := apply(ctx, s.conn, "ALTER TABLE attempts ADD COLUMN next_attempt_ms Int64 DEFAULT 0"); err != nil {
		t.Errorf("ADD COLUMN of a column that exists: %v; want it skipped", err)
	}
	if err := apply(ctx, s.conn, "ALTER TABLE attempts ADD COLUMN nope_ms Int64 DEFAULT 0"); err != nil {
		t.Fatalf("ADD COLUMN of a new column: %v", err)
	}
	if ok, err := hasColumn(ctx, s.conn, "attempts", "nope_ms"); err != nil || !ok {
		t.Errorf("the new column is not there: %v, %v", ok, err)
	}
}

// TestRowsOfOlderWritersHaveNoNextAttempt: a row inserted before
// migration 002, without next_attempt_ms, reads as none after it.
func TestRowsOfOlderWritersHaveNoNextAttempt(t *testing.T) {
	storetest.ClickHouseDSN(t)
	s := openRaw(t)
	ctx := t.Context()
	migrations, err := loadMigrations(schemas.ClickHouseMigrations)
	if err != nil {
		t.Fatal(err)
	}
	for _, stmt := range migrations[0].statements { // 001 only
		if err := s.conn.Exec(ctx, stmt); err != nil {
			t.Fatal(err)
		}
	}
	if err := insertLikeVersion1(ctx, s, time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	if err := migrate(ctx, s.conn); err != nil {
		t.Fatal(err)
	}
	d, err := s.GetDelivery(ctx, "t", "d1")
	if err != nil || d.State != schemas.StateRetrying || d.AttemptCount != 1 || d.NextAttemptAt != nil {
		t.Errorf("GetDelivery = %+v, %v; want retrying, one attempt, no next attempt", d, err)
	}
	page, err := s.ListDeliveries(ctx, projectionsQuery("t", "wh-1"))
	if err != nil || len(page.Deliveries) != 1 || page.Deliveries[0].NextAttemptAt != nil || page.Deliveries[0].AttemptCount != 1 {
		t.Errorf("ListDeliveries = %+v, %v; want d1 with no next attempt", page, err)
	}
}

// insertLikeVersion1 inserts a retrying attempt with the column list of
// the insert before migration 002.
func insertLikeVersion1(ctx context.Context, s *Store, at time.Time) error {
	batch, err := s.conn.PrepareBatch(ctx, `INSERT INTO attempts (tenant, webhook_id, delivery_id, n, state, at, at_ms,
	delivery_created_ms, event_ids, event_type, status_code, duration_ms, error, url,
	request_headers, request_body, response_headers, response_body, redelivery_of, replay_id)`)
	if err != nil {
		return err
	}
	err = batch.Append("t", "wh-1", "d1", uint32(1), schemas.StateRetrying, at, at.UnixMilli(), at.UnixMilli(),
		[]string{"e1"}, "ticket.created", int32(503), int64(12), "endpoint answered 503", "https://example.com",
		"null", "{}", "null", "busy", "", "")
	if err != nil {
		_ = batch.Abort()
		return err
	}
	return batch.Send()
}

func projectionsQuery(tenant, webhook string) projections.DeliveryQuery {
	return projections.DeliveryQuery{Tenant: tenant, WebhookID: webhook, Limit: 10}
}
