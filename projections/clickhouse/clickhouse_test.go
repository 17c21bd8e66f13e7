package clickhouse_test

import (
	"context"
	"fmt"
	"net/url"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/google/uuid"

	"github.com/hookline/hookline/projections"
	"github.com/hookline/hookline/projections/clickhouse"
	"github.com/hookline/hookline/projections/storetest"
)

func TestConformance(t *testing.T) {
	base := storetest.ClickHouseDSN(t)
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		dsn := testDatabase(t, base)
		return func(t *testing.T) projections.Store {
			t.Helper()
			s, err := clickhouse.Open(t.Context(), dsn)
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			return s
		}
	})
}

// testDatabase returns base pointed at a database of the test's own, which
// Open creates and the test's clean-up drops.
func testDatabase(t *testing.T, base string) string {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", storetest.ClickHouseDSNEnv, err)
	}
	db := "hookline_test_" + uuid.NewString()[:8] + fmt.Sprint(time.Now().UnixNano()%1e6)
	u.Path = "/" + db
	t.Cleanup(func() { dropDatabase(t, base, db) })
	return u.String()
}

func dropDatabase(t *testing.T, dsn, db string) {
	opts, err := ch.ParseDSN(dsn)
	if err != nil {
		t.Errorf("drop %s: %v", db, err)
		return
	}
	conn, err := ch.Open(opts)
	if err != nil {
		t.Errorf("drop %s: %v", db, err)
		return
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := conn.Exec(ctx, "DROP DATABASE IF EXISTS `"+db+"`"); err != nil {
		t.Errorf("drop %s: %v", db, err)
	}
}
