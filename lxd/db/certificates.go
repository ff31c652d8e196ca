package db

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	"github.com/berth-dev/berth/shared/api"
)

// Certificate is one trusted client certificate. Fingerprint is the lowercase hex
// SHA-256 of its DER bytes; Certificate is its PEM.
type Certificate struct {
	ID          int64
	Fingerprint string
	Type        string
	Name        string
	Certificate string
	Restricted  bool
	Projects    []string // never nil
}

const certificateColumns = `id, fingerprint, type, name, certificate, restricted, projects`

// GetCertificates lists every trusted certificate, by fingerprint.
func (tx *Tx) GetCertificates(ctx context.Context) ([]Certificate, error) {
	return tx.queryCertificates(ctx, `SELECT `+certificateColumns+` FROM certificates ORDER BY fingerprint`)
}

// GetCertificate returns the certificate with this fingerprint or unique fingerprint
// prefix (as `lxc config trust list` shows 12 characters): 404 when none, 400 when the
// prefix is ambiguous.
func (tx *Tx) GetCertificate(ctx context.Context, fingerprintOrPrefix string) (*Certificate, error) {
	if fingerprintOrPrefix == "" {
		return nil, notFound("certificate", fingerprintOrPrefix)
	}

	certs, err := tx.queryCertificates(ctx, `SELECT `+certificateColumns+` FROM certificates WHERE fingerprint = ?`, fingerprintOrPrefix)
	if err != nil {
		return nil, err
	}

	if len(certs) == 0 {
		// substr rather than LIKE, so '%' and '_' match only themselves.
		certs, err = tx.queryCertificates(ctx, `SELECT `+certificateColumns+`
FROM certificates WHERE substr(fingerprint, 1, length(?1)) = ?1 ORDER BY fingerprint LIMIT 2`, fingerprintOrPrefix)
		if err != nil {
			return nil, err
		}
	}

	switch len(certs) {
	case 0:
		return nil, notFound("certificate", fingerprintOrPrefix)
	case 1:
		return &certs[0], nil
	}

	return nil, api.StatusErrorf(http.StatusBadRequest, "certificate prefix %q is ambiguous", fingerprintOrPrefix)
}

// CreateCertificate stores a certificate: 409 when its fingerprint is already there.
func (tx *Tx) CreateCertificate(ctx context.Context, c Certificate) (int64, error) {
	projects, err := projectsToDB(c.Projects)
	if err != nil {
		return 0, err
	}

	res, err := tx.tx.ExecContext(ctx, `INSERT INTO certificates (fingerprint, type, name, certificate, restricted, projects)
VALUES (?, ?, ?, ?, ?, ?)`, c.Fingerprint, c.Type, c.Name, c.Certificate, c.Restricted, projects)
	if isUnique(err) {
		return 0, alreadyExists("certificate", c.Fingerprint)
	}

	if err != nil {
		return 0, fmt.Errorf("inserting certificate %q: %w", c.Fingerprint, err)
	}

	return res.LastInsertId()
}

// UpdateCertificate replaces the row of fingerprint (exact) with c, whose fingerprint
// may differ when the certificate itself was replaced.
func (tx *Tx) UpdateCertificate(ctx context.Context, fingerprint string, c Certificate) error {
	projects, err := projectsToDB(c.Projects)
	if err != nil {
		return err
	}

	res, err := tx.tx.ExecContext(ctx, `UPDATE certificates SET fingerprint = ?, type = ?, name = ?, certificate = ?,
restricted = ?, projects = ? WHERE fingerprint = ?`, c.Fingerprint, c.Type, c.Name, c.Certificate, c.Restricted, projects, fingerprint)
	if isUnique(err) {
		return alreadyExists("certificate", c.Fingerprint)
	}

	if err != nil {
		return fmt.Errorf("updating certificate %q: %w", fingerprint, err)
	}

	n, err := res.RowsAffected()
	if err == nil && n == 0 {
		return notFound("certificate", fingerprint)
	}

	return err
}

// DeleteCertificate removes the certificate of fingerprint (exact).
func (tx *Tx) DeleteCertificate(ctx context.Context, fingerprint string) error {
	res, err := tx.tx.ExecContext(ctx, `DELETE FROM certificates WHERE fingerprint = ?`, fingerprint)
	if err != nil {
		return fmt.Errorf("deleting certificate %q: %w", fingerprint, err)
	}

	n, err := res.RowsAffected()
	if err == nil && n == 0 {
		return notFound("certificate", fingerprint)
	}

	return err
}

func (tx *Tx) queryCertificates(ctx context.Context, query string, args ...any) ([]Certificate, error) {
	rows, err := tx.tx.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("querying certificates: %w", err)
	}

	defer func() { _ = rows.Close() }()

	out := []Certificate{}
	for rows.Next() {
		var c Certificate
		var projects string
		err := rows.Scan(&c.ID, &c.Fingerprint, &c.Type, &c.Name, &c.Certificate, &c.Restricted, &projects)
		if err != nil {
			return nil, fmt.Errorf("reading certificate: %w", err)
		}

		err = json.Unmarshal([]byte(projects), &c.Projects)
		if err != nil {
			return nil, fmt.Errorf("reading projects of certificate %q: %w", c.Fingerprint, err)
		}

		if c.Projects == nil {
			c.Projects = []string{}
		}

		out = append(out, c)
	}

	err = rows.Err()
	if err != nil {
		return nil, fmt.Errorf("querying certificates: %w", err)
	}

	return out, nil
}

func projectsToDB(projects []string) (string, error) {
	if projects == nil {
		projects = []string{}
	}

	data, err := json.Marshal(projects)
	if err != nil {
		return "", fmt.Errorf("encoding projects: %w", err)
	}

	return string(data), nil
}
