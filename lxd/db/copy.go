package db

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/berth-dev/berth/lxd/db/schema"
)

// copyTimeout bounds CopyInto when ctx has no deadline.
const copyTimeout = 5 * time.Minute

// copyBatchBytes bounds the SQL text of one multi-row INSERT.
const copyBatchBytes = 256 << 10

// CopyInto copies every table of src (a file database, left untouched) into dst (the
// fresh global dqlite database) in one transaction, then reads both back and checks
// per table the row count and a SHA-256 of the rows in rowid order. dst gets the same
// schema first (the same updates); rows dst's updates created are replaced by src's.
//
// Values move as SQL literals (quote()), so no driver converts them on the way: text
// in DATETIME columns stays text, integers stay integers, blobs stay blobs.
func CopyInto(ctx context.Context, src *DB, dst *sql.DB) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, copyTimeout)
		defer cancel()
	}

	_, err := schema.Ensure(ctx, dst, updates)
	if err != nil {
		return fmt.Errorf("creating the schema in the destination: %w", err)
	}

	stx, err := src.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("reading the source database: %w", err)
	}

	defer func() { _ = stx.Rollback() }()

	tables, err := listTables(ctx, stx)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}

	err = copyTables(ctx, stx, dst, tables)
	if err != nil {
		return err
	}

	_ = stx.Rollback()

	return VerifyCopy(ctx, src, dst)
}

// table is a table's name and whether rows have a rowid to order them by.
type table struct {
	name  string
	rowid bool
}

func listTables(ctx context.Context, q querier) ([]table, error) {
	rows, err := q.QueryContext(ctx, `SELECT name, sql FROM sqlite_master
WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listing tables: %w", err)
	}

	defer func() { _ = rows.Close() }()

	var tables []table
	for rows.Next() {
		var name, stmt string
		err := rows.Scan(&name, &stmt)
		if err != nil {
			return nil, fmt.Errorf("listing tables: %w", err)
		}

		rowid := !strings.Contains(strings.ToUpper(stmt), "WITHOUT ROWID")
		tables = append(tables, table{name: name, rowid: rowid})
	}

	err = rows.Err()
	if err != nil {
		return nil, fmt.Errorf("listing tables: %w", err)
	}

	return tables, nil
}

// querier is what *sql.DB and *sql.Tx share.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

func quoteIdent(name string) string {
	return `"` + strings.ReplaceAll(name, `"`, `""`) + `"`
}

// columns returns a table's column names in order.
func columns(ctx context.Context, q querier, name string) ([]string, error) {
	rows, err := q.QueryContext(ctx, "SELECT * FROM "+quoteIdent(name)+" LIMIT 0")
	if err != nil {
		return nil, fmt.Errorf("reading columns of %q: %w", name, err)
	}

	defer func() { _ = rows.Close() }()

	return rows.Columns()
}

// literalRows selects each row of a table as one string of SQL literals,
// "(lit1,lit2,...)", in rowid order (all columns for a table without rowid). The same
// query serves the copy and the checksum on either side.
func literalRows(t table, cols []string) string {
	parts := make([]string, len(cols))
	for i, c := range cols {
		parts[i] = "quote(" + quoteIdent(c) + ")"
	}

	order := "rowid"
	if !t.rowid {
		idx := make([]string, len(cols))
		for i := range cols {
			idx[i] = fmt.Sprint(i + 1)
		}

		order = strings.Join(idx, ",")
	}

	return "SELECT '(' || " + strings.Join(parts, " || ',' || ") + " || ')' FROM " + quoteIdent(t.name) + " ORDER BY " + order
}

func copyTables(ctx context.Context, stx *sql.Tx, dst *sql.DB, tables []table) error {
	dtx, err := dst.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("beginning the copy transaction: %w", err)
	}

	defer func() { _ = dtx.Rollback() }()

	dstTables, err := listTables(ctx, dtx)
	if err != nil {
		return fmt.Errorf("destination: %w", err)
	}

	if !slices.Equal(dstTables, tables) {
		return fmt.Errorf("destination tables %v differ from the source's %v", names(dstTables), names(tables))
	}

	// Rows go in table-name order, not foreign-key order: the check waits for COMMIT.
	_, err = dtx.ExecContext(ctx, "PRAGMA defer_foreign_keys = ON")
	if err != nil {
		return fmt.Errorf("deferring foreign keys: %w", err)
	}

	for _, t := range tables {
		_, err = dtx.ExecContext(ctx, "DELETE FROM "+quoteIdent(t.name))
		if err != nil {
			return fmt.Errorf("emptying %q in the destination: %w", t.name, err)
		}
	}

	for _, t := range tables {
		err = copyTable(ctx, stx, dtx, t)
		if err != nil {
			return err
		}
	}

	err = copySequences(ctx, stx, dtx)
	if err != nil {
		return err
	}

	err = dtx.Commit()
	if err != nil {
		return fmt.Errorf("committing the copy: %w", err)
	}

	return nil
}

func names(tables []table) []string {
	out := make([]string, len(tables))
	for i, t := range tables {
		out[i] = t.name
	}

	return out
}

func copyTable(ctx context.Context, stx *sql.Tx, dtx *sql.Tx, t table) error {
	cols, err := columns(ctx, stx, t.name)
	if err != nil {
		return err
	}

	rows, err := stx.QueryContext(ctx, literalRows(t, cols))
	if err != nil {
		return fmt.Errorf("reading %q: %w", t.name, err)
	}

	defer func() { _ = rows.Close() }()

	colList := make([]string, len(cols))
	for i, c := range cols {
		colList[i] = quoteIdent(c)
	}

	head := "INSERT INTO " + quoteIdent(t.name) + " (" + strings.Join(colList, ",") + ") VALUES "

	var batch []string
	size := 0
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}

		_, err := dtx.ExecContext(ctx, head+strings.Join(batch, ","))
		if err != nil {
			return fmt.Errorf("copying rows of %q: %w", t.name, err)
		}

		batch = batch[:0]
		size = 0

		return nil
	}

	for rows.Next() {
		var lit string
		err := rows.Scan(&lit)
		if err != nil {
			return fmt.Errorf("reading %q: %w", t.name, err)
		}

		batch = append(batch, lit)
		size += len(lit)
		if size >= copyBatchBytes || len(batch) >= 500 {
			err = flush()
			if err != nil {
				return err
			}
		}
	}

	err = rows.Err()
	if err != nil {
		return fmt.Errorf("reading %q: %w", t.name, err)
	}

	return flush()
}

// copySequences carries AUTOINCREMENT counters over, so ids of deleted rows are not
// handed out again.
func copySequences(ctx context.Context, stx *sql.Tx, dtx *sql.Tx) error {
	var n int
	err := stx.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE name = 'sqlite_sequence'`).Scan(&n)
	if err != nil || n == 0 {
		return err
	}

	rows, err := stx.QueryContext(ctx, `SELECT name, seq FROM sqlite_sequence`)
	if err != nil {
		return fmt.Errorf("reading sqlite_sequence: %w", err)
	}

	defer func() { _ = rows.Close() }()

	type seq struct {
		name string
		seq  int64
	}

	var seqs []seq
	for rows.Next() {
		var s seq
		err := rows.Scan(&s.name, &s.seq)
		if err != nil {
			return fmt.Errorf("reading sqlite_sequence: %w", err)
		}

		seqs = append(seqs, s)
	}

	err = rows.Err()
	if err != nil {
		return fmt.Errorf("reading sqlite_sequence: %w", err)
	}

	_, err = dtx.ExecContext(ctx, `DELETE FROM sqlite_sequence`)
	if err != nil {
		return fmt.Errorf("resetting sqlite_sequence: %w", err)
	}

	for _, s := range seqs {
		_, err = dtx.ExecContext(ctx, `INSERT INTO sqlite_sequence (name, seq) VALUES (?, ?)`, s.name, s.seq)
		if err != nil {
			return fmt.Errorf("copying sqlite_sequence of %q: %w", s.name, err)
		}
	}

	return nil
}

// ErrCopyMismatch is wrapped by VerifyCopy's errors.
var ErrCopyMismatch = errors.New("copied database differs from its source")

// VerifyCopy compares every table of src and dst: same tables, and per table the same
// row count and SHA-256 of the rows (as SQL literals, in rowid order). The first
// difference is returned naming its table.
func VerifyCopy(ctx context.Context, src *DB, dst *sql.DB) error {
	stx, err := src.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return fmt.Errorf("reading the source database: %w", err)
	}

	defer func() { _ = stx.Rollback() }()

	dtx, err := dst.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("reading the destination database: %w", err)
	}

	defer func() { _ = dtx.Rollback() }()

	tables, err := listTables(ctx, stx)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}

	dstTables, err := listTables(ctx, dtx)
	if err != nil {
		return fmt.Errorf("destination: %w", err)
	}

	if !slices.Equal(dstTables, tables) {
		return fmt.Errorf("%w: destination tables %v, source tables %v", ErrCopyMismatch, names(dstTables), names(tables))
	}

	for _, t := range tables {
		cols, err := columns(ctx, stx, t.name)
		if err != nil {
			return err
		}

		sn, ssum, err := tableSum(ctx, stx, t, cols)
		if err != nil {
			return fmt.Errorf("source: %w", err)
		}

		dn, dsum, err := tableSum(ctx, dtx, t, cols)
		if err != nil {
			return fmt.Errorf("destination: %w", err)
		}

		if sn != dn {
			return fmt.Errorf("%w: table %q has %d rows in the source, %d in the copy", ErrCopyMismatch, t.name, sn, dn)
		}

		if ssum != dsum {
			return fmt.Errorf("%w: table %q: checksum %s in the source, %s in the copy", ErrCopyMismatch, t.name, ssum[:16], dsum[:16])
		}
	}

	return nil
}

// tableSum counts a table's rows and hashes them as literal rows.
func tableSum(ctx context.Context, q querier, t table, cols []string) (int, string, error) {
	rows, err := q.QueryContext(ctx, literalRows(t, cols))
	if err != nil {
		return 0, "", fmt.Errorf("reading %q: %w", t.name, err)
	}

	defer func() { _ = rows.Close() }()

	h := sha256.New()
	n := 0
	for rows.Next() {
		var lit string
		err := rows.Scan(&lit)
		if err != nil {
			return 0, "", fmt.Errorf("reading %q: %w", t.name, err)
		}

		h.Write([]byte(lit))
		h.Write([]byte{'\n'})
		n++
	}

	err = rows.Err()
	if err != nil {
		return 0, "", fmt.Errorf("reading %q: %w", t.name, err)
	}

	return n, hex.EncodeToString(h.Sum(nil)), nil
}
