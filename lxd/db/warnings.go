package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// Warning is one recorded host problem, unique by Type and Entity.
type Warning struct {
	UUID        string
	Type        string
	Entity      string // an API URL, a host object ("sysctl fs.file-max"), or ""
	Severity    string
	Status      string // new, acknowledged or resolved
	Count       int
	FirstSeen   time.Time
	LastSeen    time.Time
	LastMessage string
}

const warningColumns = `uuid, type, entity, severity, status, count, first_seen_date, last_seen_date, last_message`

// GetWarnings lists every warning, oldest first.
func (tx *Tx) GetWarnings(ctx context.Context) ([]Warning, error) {
	return tx.queryWarnings(ctx, `SELECT `+warningColumns+` FROM warnings ORDER BY first_seen_date, id`)
}

// GetWarning returns one warning by uuid, or a 404.
func (tx *Tx) GetWarning(ctx context.Context, uuid string) (*Warning, error) {
	ws, err := tx.queryWarnings(ctx, `SELECT `+warningColumns+` FROM warnings WHERE uuid = ?`, uuid)
	if err != nil {
		return nil, err
	}

	if len(ws) == 0 {
		return nil, notFound("warning", uuid)
	}

	return &ws[0], nil
}

// GetWarningByKey returns the warning of a type and entity, nil when there is none.
func (tx *Tx) GetWarningByKey(ctx context.Context, typ, entity string) (*Warning, error) {
	ws, err := tx.queryWarnings(ctx, `SELECT `+warningColumns+` FROM warnings WHERE type = ? AND entity = ?`, typ, entity)
	if err != nil || len(ws) == 0 {
		return nil, err
	}

	return &ws[0], nil
}

// CountWarnings returns the number of warnings.
func (tx *Tx) CountWarnings(ctx context.Context) (int, error) {
	var n int
	err := tx.tx.QueryRowContext(ctx, `SELECT count(*) FROM warnings`).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("counting warnings: %w", err)
	}

	return n, nil
}

func (tx *Tx) queryWarnings(ctx context.Context, query string, args ...any) ([]Warning, error) {
	rows, err := tx.tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("querying warnings: %w", err)
	}

	defer func() { _ = rows.Close() }()
	out := []Warning{}
	for rows.Next() {
		var w Warning
		var first, last string
		err := rows.Scan(&w.UUID, &w.Type, &w.Entity, &w.Severity, &w.Status, &w.Count, &first, &last, &w.LastMessage)
		if err != nil {
			return nil, fmt.Errorf("scanning warning: %w", err)
		}

		w.FirstSeen, _ = time.Parse(time.RFC3339Nano, first)
		w.LastSeen, _ = time.Parse(time.RFC3339Nano, last)
		out = append(out, w)
	}

	err = rows.Err()
	if err != nil {
		return nil, fmt.Errorf("reading warnings: %w", err)
	}

	return out, nil
}

// CreateWarning inserts a warning: 409 when its uuid or its type and entity are taken.
func (tx *Tx) CreateWarning(ctx context.Context, w Warning) error {
	_, err := tx.tx.ExecContext(ctx, `INSERT INTO warnings (`+warningColumns+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		w.UUID, w.Type, w.Entity, w.Severity, w.Status, w.Count,
		w.FirstSeen.UTC().Format(time.RFC3339Nano), w.LastSeen.UTC().Format(time.RFC3339Nano), w.LastMessage)
	if isUnique(err) {
		return alreadyExists("warning", w.Type+" "+w.Entity)
	}

	if err != nil {
		return fmt.Errorf("inserting warning: %w", err)
	}

	return nil
}

// UpdateWarning writes the changing fields of a warning (status, count, last seen and
// message, severity): 404 when its uuid is gone.
func (tx *Tx) UpdateWarning(ctx context.Context, w Warning) error {
	return tx.execOne(ctx, "warning", w.UUID, `UPDATE warnings SET severity = ?, status = ?, count = ?, last_seen_date = ?, last_message = ?
WHERE uuid = ?`, w.Severity, w.Status, w.Count, w.LastSeen.UTC().Format(time.RFC3339Nano), w.LastMessage, w.UUID)
}

// DeleteWarning deletes a warning: 404 when there is none.
func (tx *Tx) DeleteWarning(ctx context.Context, uuid string) error {
	return tx.execOne(ctx, "warning", uuid, `DELETE FROM warnings WHERE uuid = ?`, uuid)
}

// DeleteOldestWarning removes the warning seen longest ago (the table is capped).
func (tx *Tx) DeleteOldestWarning(ctx context.Context) error {
	_, err := tx.tx.ExecContext(ctx, `DELETE FROM warnings WHERE id = (SELECT id FROM warnings ORDER BY last_seen_date, id LIMIT 1)`)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("deleting oldest warning: %w", err)
	}

	return nil
}
