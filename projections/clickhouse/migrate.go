package clickhouse

import (
	"context"
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/hookline/hookline/schemas"
)

// migrationsDir is where schemas.ClickHouseMigrations keeps the files.
const migrationsDir = "sql/clickhouse"

// createMigrations records applied migrations. Two processes that migrate
// at once may both apply a version; every statement is idempotent and the
// engine folds the repeated record.
const createMigrations = `CREATE TABLE IF NOT EXISTS schema_migrations (
	version    UInt32,
	name       String,
	applied_at DateTime
) ENGINE = ReplacingMergeTree
ORDER BY version`

var migrationName = regexp.MustCompile(`^([0-9]+)_[A-Za-z0-9_]+\.sql$`)

type migration struct {
	version    uint32
	name       string
	statements []string
}

// migrate applies, in order, every migration not yet recorded.
func migrate(ctx context.Context, conn driver.Conn) error {
	migrations, err := loadMigrations(schemas.ClickHouseMigrations)
	if err != nil {
		return err
	}
	if err := conn.Exec(ctx, createMigrations); err != nil {
		return fmt.Errorf("clickhouse: create schema_migrations: %w", err)
	}
	applied, err := appliedVersions(ctx, conn)
	if err != nil {
		return err
	}
	for _, m := range migrations {
		if applied[m.version] {
			continue
		}
		for _, stmt := range m.statements {
			if err := apply(ctx, conn, stmt); err != nil {
				return fmt.Errorf("clickhouse: migration %s: %w", m.name, err)
			}
		}
		if err := record(ctx, conn, m); err != nil {
			return err
		}
	}
	return nil
}

// addColumn matches the one statement kind that 18.16 cannot make
// idempotent in SQL (it has no ADD COLUMN IF NOT EXISTS): table and column.
var addColumn = regexp.MustCompile(`(?is)^ALTER\s+TABLE\s+([A-Za-z_][A-Za-z0-9_]*)\s+ADD\s+COLUMN\s+([A-Za-z_][A-Za-z0-9_]*)\s`)

// apply runs one statement. An ADD COLUMN whose column exists is done
// already, by an earlier run cut short before it recorded its version or by
// another process migrating at the same time: apply skips it, and takes a
// failure as success when the column is there after all.
func apply(ctx context.Context, conn driver.Conn, stmt string) error {
	m := addColumn.FindStringSubmatch(stmt)
	if m == nil {
		return conn.Exec(ctx, stmt)
	}
	if ok, err := hasColumn(ctx, conn, m[1], m[2]); err != nil || ok {
		return err
	}
	err := conn.Exec(ctx, stmt)
	if err != nil {
		if ok, _ := hasColumn(ctx, conn, m[1], m[2]); ok {
			return nil
		}
	}
	return err
}

func hasColumn(ctx context.Context, conn driver.Conn, table, column string) (bool, error) {
	var n uint64
	err := conn.QueryRow(ctx, `SELECT count() FROM system.columns
		WHERE database = currentDatabase() AND table = ? AND name = ?`, table, column).Scan(&n)
	if err != nil {
		return false, fmt.Errorf("read system.columns: %w", err)
	}
	return n > 0, nil
}

func appliedVersions(ctx context.Context, conn driver.Conn) (map[uint32]bool, error) {
	rows, err := conn.Query(ctx, "SELECT DISTINCT version FROM schema_migrations")
	if err != nil {
		return nil, fmt.Errorf("clickhouse: read schema_migrations: %w", err)
	}
	defer rows.Close()
	applied := map[uint32]bool{}
	for rows.Next() {
		var v uint32
		if err := rows.Scan(&v); err != nil {
			return nil, fmt.Errorf("clickhouse: read schema_migrations: %w", err)
		}
		applied[v] = true
	}
	return applied, rows.Err()
}

func record(ctx context.Context, conn driver.Conn, m migration) error {
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO schema_migrations (version, name, applied_at)")
	if err != nil {
		return fmt.Errorf("clickhouse: record migration %s: %w", m.name, err)
	}
	if err := batch.Append(m.version, m.name, time.Now()); err != nil {
		_ = batch.Abort()
		return fmt.Errorf("clickhouse: record migration %s: %w", m.name, err)
	}
	if err := batch.Send(); err != nil {
		return fmt.Errorf("clickhouse: record migration %s: %w", m.name, err)
	}
	return nil
}

// loadMigrations reads NNN_name.sql files, ordered by NNN.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	entries, err := fs.ReadDir(fsys, migrationsDir)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: read migrations: %w", err)
	}
	var out []migration
	seen := map[uint32]string{}
	for _, e := range entries {
		m := migrationName.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("clickhouse: migration file %q is not named NNN_name.sql", e.Name())
		}
		v, err := strconv.ParseUint(m[1], 10, 32)
		if err != nil {
			return nil, fmt.Errorf("clickhouse: migration %s: %w", e.Name(), err)
		}
		if other, dup := seen[uint32(v)]; dup {
			return nil, fmt.Errorf("clickhouse: migrations %s and %s share version %d", other, e.Name(), v)
		}
		seen[uint32(v)] = e.Name()
		text, err := fs.ReadFile(fsys, path.Join(migrationsDir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("clickhouse: read migration %s: %w", e.Name(), err)
		}
		out = append(out, migration{version: uint32(v), name: e.Name(), statements: splitStatements(string(text))})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// splitStatements cuts a file at semicolons after dropping whole-line --
// comments; the native protocol runs one statement per query.
func splitStatements(text string) []string {
	var kept []string
	for _, line := range strings.Split(text, "\n") {
		if !strings.HasPrefix(strings.TrimSpace(line), "--") {
			kept = append(kept, line)
		}
	}
	var stmts []string
	for _, s := range strings.Split(strings.Join(kept, "\n"), ";") {
		if s = strings.TrimSpace(s); s != "" {
			stmts = append(stmts, s)
		}
	}
	return stmts
}
