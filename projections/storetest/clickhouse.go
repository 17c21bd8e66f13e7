package storetest

import (
	"os"
	"testing"
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
