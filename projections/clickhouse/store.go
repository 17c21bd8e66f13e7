package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"regexp"

	ch "github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/hookline/hookline/projections"
)

// Store is a projections.Store on ClickHouse. It is safe for concurrent use.
type Store struct {
	conn driver.Conn
}

var _ projections.Store = (*Store)(nil)

// databaseName is what Open accepts as a database name: it is the one
// identifier that goes into SQL as text (CREATE DATABASE takes no bound
// parameter).
var databaseName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// Open connects to the DSN's server, e.g. clickhouse://127.0.0.1:9000/hookline,
// creates the DSN's database if it is missing and applies the migrations.
func Open(ctx context.Context, dsn string) (*Store, error) {
	opts, err := parseDSN(dsn)
	if err != nil {
		return nil, err
	}
	if err := createDatabase(ctx, *opts); err != nil {
		return nil, err
	}
	conn, err := ch.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: connect: %w", err)
	}
	if err := conn.Ping(ctx); err != nil {
		_ = conn.Close()
		return nil, fmt.Errorf("clickhouse: ping %v: %w", opts.Addr, err)
	}
	if err := migrate(ctx, conn); err != nil {
		_ = conn.Close()
		return nil, err
	}
	return &Store{conn: conn}, nil
}

// parseDSN checks the DSN without echoing it, since it may hold a password.
func parseDSN(dsn string) (*ch.Options, error) {
	if _, err := url.Parse(dsn); err != nil {
		return nil, errors.New("clickhouse: the DSN is not a URL (want clickhouse://host:9000/database)")
	}
	opts, err := ch.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("clickhouse: parse DSN: %w", err)
	}
	if opts.Protocol != ch.Native {
		return nil, errors.New("clickhouse: only the native protocol works with every supported server: use clickhouse://host:9000/database")
	}
	if opts.Auth.Database == "" {
		opts.Auth.Database = "default"
	}
	if !databaseName.MatchString(opts.Auth.Database) {
		return nil, fmt.Errorf("clickhouse: database name %q: use letters, digits and _", opts.Auth.Database)
	}
	return opts, nil
}

// createDatabase creates opts' database through a connection to the
// server's default database, since connecting to a missing one fails.
func createDatabase(ctx context.Context, opts ch.Options) error {
	db := opts.Auth.Database
	opts.Auth.Database = ""
	conn, err := ch.Open(&opts)
	if err != nil {
		return fmt.Errorf("clickhouse: connect: %w", err)
	}
	defer conn.Close()
	if err := conn.Exec(ctx, "CREATE DATABASE IF NOT EXISTS `"+db+"`"); err != nil {
		return fmt.Errorf("clickhouse: create database %s: %w", db, err)
	}
	return nil
}

// Ping checks that the server answers.
func (s *Store) Ping(ctx context.Context) error {
	return s.conn.Ping(ctx)
}

// Close closes the connections.
func (s *Store) Close() error {
	return s.conn.Close()
}
