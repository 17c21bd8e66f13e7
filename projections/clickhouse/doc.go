// Package clickhouse is the attempts store on ClickHouse, for deployments
// with --clickhouse-dsn.
//
// It owns the connection (native protocol only), applying the DDL embedded
// in schemas at Open, and the queries. It writes only with
// PrepareBatch/Append/Send and deduplicates at read time, since
// ReplacingMergeTree folds repeated attempts only eventually. Its SQL is
// limited to what ClickHouse 18.16 and current servers both run: no
// DateTime64, no TTL, no {name:Type} parameters. Retention drops whole day
// partitions instead of a TTL. It must never interpolate a value into SQL
// (values are bound with ?; the one exception is the partition number of
// ALTER TABLE … DROP PARTITION, which takes no parameter and is parsed as an
// integer first), never store a delivery's state apart from its attempts,
// and never change a migration that has shipped: add a new numbered file
// instead.
//
// A pending mark (n 0) is a row like an attempt's. Of repeated rows of one
// (delivery, n) reads take the latest by at_ms; a merge keeps the one
// inserted last (the table has no version column), which is the same row
// as long as a delivery's records are inserted in the order they were
// written, as the projector does: two marks of a delivery read in the
// other order answer the older one once merged.
package clickhouse
