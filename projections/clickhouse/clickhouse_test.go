package clickhouse_test

import (
	"testing"

	"github.com/hookline/hookline/projections"
	"github.com/hookline/hookline/projections/clickhouse"
	"github.com/hookline/hookline/projections/storetest"
)

func TestConformance(t *testing.T) {
	storetest.ClickHouseDSN(t)
	storetest.Run(t, func(t *testing.T) storetest.Opener {
		dsn := storetest.ClickHouseDatabase(t)
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
