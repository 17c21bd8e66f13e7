package clickhouse

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"
)

// selectOldPartitions lists the day partitions (toYYYYMMDD of `at`) of the
// tables retention drops together that end before the day holding t.
// toYYYYMMDD reads `at` in the server's time zone, so days are the server's
// days: the boundary is computed there too, never in Go.
const selectOldPartitions = `SELECT DISTINCT table, partition
FROM system.parts
WHERE database = currentDatabase() AND active AND table IN ('attempts', 'delivery_index')
	AND toUInt32OrZero(partition) < toYYYYMMDD(toDateTime(?))
ORDER BY table, partition`

// DropBefore drops every day partition of attempts and delivery_index that
// ends at or before the start of t's day (server time zone): attempts made
// on t's day but before t stay until the next call after midnight.
// Dropping a partition is a metadata operation, cheap whatever its size.
func (s *Store) DropBefore(ctx context.Context, t time.Time) error {
	if t.Unix() <= 0 {
		return nil // `at` holds nothing before 1970
	}
	parts, err := s.oldPartitions(ctx, min(t.Unix(), math.MaxUint32))
	if err != nil {
		return err
	}
	for _, p := range parts {
		// ALTER takes no bound parameters; both values are checked: the
		// table is one of two constants and the partition is all digits.
		stmt := "ALTER TABLE " + p.table + " DROP PARTITION " + strconv.FormatUint(uint64(p.day), 10)
		if err := s.conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("clickhouse: drop partition %d of %s: %w", p.day, p.table, err)
		}
	}
	return nil
}

type partition struct {
	table string
	day   uint32
}

func (s *Store) oldPartitions(ctx context.Context, before int64) ([]partition, error) {
	rows, err := s.conn.Query(ctx, selectOldPartitions, uint32(before))
	if err != nil {
		return nil, fmt.Errorf("clickhouse: list partitions: %w", err)
	}
	defer rows.Close()
	var out []partition
	for rows.Next() {
		var table, name string
		if err := rows.Scan(&table, &name); err != nil {
			return nil, fmt.Errorf("clickhouse: list partitions: %w", err)
		}
		day, err := strconv.ParseUint(name, 10, 32)
		if err != nil || (table != "attempts" && table != "delivery_index") {
			return nil, fmt.Errorf("clickhouse: unexpected partition %q of table %q", name, table)
		}
		out = append(out, partition{table: table, day: uint32(day)})
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("clickhouse: list partitions: %w", err)
	}
	return out, nil
}
