package storetest

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"testing"
	"time"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/google/uuid"
)

// ClickHouseDSNEnv names the environment variable that points tests at a
// ClickHouse server, e.g. clickhouse://127.0.0.1:19000/default. Tests create
// databases of their own on it and drop them when they end.
const ClickHouseDSNEnv = "HOOKLINE_TEST_CLICKHOUSE_DSN"

// ClickHouseDSN returns the DSN of the test ClickHouse server. When none is
// configured it skips the test, loudly, except under CI=true, where a missing
// server is a failure: CI must prove the ClickHouse path, not skip it. Only
// an explicit go test -short skips it there.
func ClickHouseDSN(t testing.TB) string {
	t.Helper()
	if dsn := os.Getenv(ClickHouseDSNEnv); dsn != "" {
		return dsn
	}
	msg := ClickHouseDSNEnv + " is not set, so the ClickHouse integration tests cannot run. " +
		"Start a server with: export " + ClickHouseDSNEnv + "=$(scripts/clickhouse.sh start)"
	if testing.Short() {
		t.Skip("-short: skipping ClickHouse integration tests; " + msg)
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("CI=true and " + msg)
	}
	t.Skip("!!! SKIPPING CLICKHOUSE TESTS !!! " + msg)
	return ""
}

// ClickHouseDatabase returns the test server's DSN pointed at a database of
// the test's own, which clickhouse.Open creates and the test's clean-up
// drops. It skips or fails like ClickHouseDSN when there is no server.
func ClickHouseDatabase(t testing.TB) string {
	t.Helper()
	base := ClickHouseDSN(t)
	u, err := url.Parse(base)
	if err != nil {
		t.Fatalf("%s: %v", ClickHouseDSNEnv, err)
	}
	db := "hookline_test_" + uuid.NewString()[:8] + fmt.Sprint(time.Now().UnixNano()%1e6)
	u.Path = "/" + db
	t.Cleanup(func() { dropDatabase(t, base, db) })
	return u.String()
}

func dropDatabase(t testing.TB, dsn, db string) {
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
