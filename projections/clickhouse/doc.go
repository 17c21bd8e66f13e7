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
package clickhouse
