package schemas

import "embed"

// ClickHouseMigrations holds the ClickHouse DDL of the attempts store as
// numbered files, sql/clickhouse/NNN_name.sql, applied in order of NNN. A
// file may hold several statements, each ending with a semicolon. Every
// statement must be idempotent and must run on ClickHouse 18.16 as well as
// on a current server: CREATE ... IF NOT EXISTS, and ALTER TABLE ... ADD
// COLUMN without IF NOT EXISTS, which 18.16 lacks (the migrator skips an
// ADD COLUMN whose column exists, projections/clickhouse/migrate.go).
//
//go:embed sql/clickhouse/*.sql
var ClickHouseMigrations embed.FS
