package trust

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"unicode"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/listener"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
)

// Entry is a trusted certificate as authentication needs it.
type Entry struct {
	Fingerprint string
	Name        string
	Type        string

	// Restricted confines a client certificate to Projects (sorted): it sees and
	// touches nothing else.
	Restricted bool
	Projects   []string
}

// Store is the trust store: the certificates table and an in-memory copy consulted
// on every HTTPS request, replaced after each change.
type Store struct {
	db    *db.DB
	log   *slog.Logger
	conns *conns

	// writeMu serialises changes, so the cache is reloaded in commit order.
	writeMu sync.Mutex

	mu    sync.RWMutex // guards certs
	certs map[string]Entry

	// onRevoke, when set, ends what a removed or narrowed certificate's client left
	// running beyond its own connections (operations whose websockets it may have
	// handed to connections without a certificate).
	onRevoke func(fingerprint string)

	// clusterFingerprints are the cluster certificate's: a client presenting it is a
	// member (nil when not clustered). While the cluster certificate is replaced there
	// are two, the old and the new (SetClusterFingerprints).
	clusterFingerprints atomic.Pointer[[]string]
}

// SetClusterFingerprint makes clients presenting the certificate of fingerprint fp
// cluster members ("" none).
func (s *Store) SetClusterFingerprint(fp string) {
	if fp == "" {
		s.clusterFingerprints.Store(nil)
		return
	}

	s.SetClusterFingerprints([]string{fp})
}

// SetClusterFingerprints makes clients presenting any of the certificates of
// fingerprints fps cluster members: the cluster certificate's, and while it is being
// replaced (PUT /1.0/cluster/certificate) the other one of the swap.
func (s *Store) SetClusterFingerprints(fps []string) {
	fps = slices.DeleteFunc(slices.Clone(fps), func(fp string) bool { return fp == "" })
	if len(fps) == 0 {
		s.clusterFingerprints.Store(nil)
		return
	}

	s.clusterFingerprints.Store(&fps)
}

// isClusterFingerprint reports whether fp is a member's certificate.
func (s *Store) isClusterFingerprint(fp string) bool {
	fps := s.clusterFingerprints.Load()
	return fps != nil && fp != "" && slices.Contains(*fps, fp)
}

// OnRevoke sets what to do, besides closing its connections, when a certificate is
// removed or narrowed. Set it before serving.
func (s *Store) OnRevoke(f func(fingerprint string)) { s.onRevoke = f }

// revoke cuts fp's connections and has onRevoke end the rest.
func (s *Store) revoke(ctx context.Context, fp string) int {
	n := s.conns.cut(fp, ownConn(ctx))
	if s.onRevoke != nil {
		s.onRevoke(fp)
	}

	return n
}

// Limits on what a certificate record may hold.
const (
	maxCertificate = 16 << 10
	maxName        = 255
)

// NewStore loads the trust store.
func NewStore(ctx context.Context, d *db.DB, log *slog.Logger) (*Store, error) {
	s := &Store{db: d, log: log, conns: newConns(), certs: map[string]Entry{}}
	err := s.reload(ctx)
	if err != nil {
		return nil, err
	}

	return s, nil
}

// Lookup returns the trusted certificate of fingerprint (exact). A nil store trusts
// nothing.
func (s *Store) Lookup(fingerprint string) (Entry, bool) {
	if s == nil {
		return Entry{}, false
	}

	s.mu.RLock()
	defer s.mu.RUnlock()
	e, ok := s.certs[fingerprint]
	return e, ok
}

func (s *Store) reload(ctx context.Context) error {
	var rows []db.Certificate
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		rows, err = tx.GetCertificates(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("loading trusted certificates: %w", err)
	}

	certs := make(map[string]Entry, len(rows))
	for _, r := range rows {
		// A row naming projects is restricted to them even if its restricted flag is off
		// (a hand edit): fail closed rather than make it an administrator.
		e := Entry{Fingerprint: r.Fingerprint, Name: r.Name, Type: r.Type}
		if r.Restricted || len(r.Projects) > 0 {
			e.Restricted = true
			e.Projects = slices.Clone(r.Projects)
			slices.Sort(e.Projects)
		}

		certs[r.Fingerprint] = e
	}

	s.mu.Lock()
	s.certs = certs
	s.mu.Unlock()
	return nil
}

// List returns every trusted certificate.
func (s *Store) List(ctx context.Context) ([]api.Certificate, error) {
	var out []api.Certificate
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		rows, err := tx.GetCertificates(ctx)
		if err != nil {
			return err
		}

		out = make([]api.Certificate, 0, len(rows))
		for _, r := range rows {
			out = append(out, toAPI(r))
		}

		return nil
	})

	return out, err
}

// Get returns the certificate of a fingerprint or unique prefix.
func (s *Store) Get(ctx context.Context, fingerprint string) (*api.Certificate, error) {
	var out api.Certificate
	err := s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		r, err := tx.GetCertificate(ctx, fingerprint)
		if err == nil {
			out = toAPI(*r)
		}

		return err
	})
	if err != nil {
		return nil, err
	}

	return &out, nil
}

func toAPI(r db.Certificate) api.Certificate {
	return api.Certificate{
		CertificatePut: api.CertificatePut{
			Name: r.Name, Type: r.Type, Restricted: r.Restricted, Projects: slices.Clone(r.Projects),
			Certificate: r.Certificate,
		},
		Fingerprint: r.Fingerprint,
	}
}

// Add trusts a certificate (DER or PEM) under name with the given type (client when
// empty; restricted ones are refused by Normalise). It returns the fingerprint: 409
// when the certificate is already trusted, 400 for bad input.
func (s *Store) Add(ctx context.Context, cert *x509.Certificate, put api.CertificatePut) (string, error) {
	put, err := Normalise(put)
	if err != nil {
		return "", err
	}

	row := db.Certificate{
		Fingerprint: listener.Fingerprint(cert.Raw),
		Type:        put.Type,
		Name:        put.Name,
		Certificate: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})),
		Restricted:  put.Restricted,
		Projects:    put.Projects,
	}

	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	err = s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		_, err := tx.CreateCertificate(ctx, row)
		return err
	})
	if err != nil {
		return "", err
	}

	return row.Fingerprint, s.reload(ctx)
}

// Update changes the certificate of a fingerprint or unique prefix: name, type and,
// when put.Certificate is set, the certificate itself. A change that narrows what the
// client may do, or replaces its certificate, closes its open connections (but that of
// its own request, ctx) and ends its operations (onRevoke). It returns the (possibly
// new) fingerprint.
func (s *Store) Update(ctx context.Context, fingerprint string, put api.CertificatePut) (string, error) {
	put, err := Normalise(put)
	if err != nil {
		return "", err
	}

	var newCert *x509.Certificate
	if put.Certificate != "" {
		newCert, err = ParseCertificate(put.Certificate)
		if err != nil {
			return "", err
		}
	}

	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var old db.Certificate
	var row db.Certificate
	err = s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		cur, err := tx.GetCertificate(ctx, fingerprint)
		if err != nil {
			return err
		}

		old = *cur
		row = db.Certificate{
			Fingerprint: cur.Fingerprint, Type: put.Type, Name: put.Name, Certificate: cur.Certificate,
			Restricted: put.Restricted, Projects: put.Projects,
		}

		if newCert != nil {
			row.Fingerprint = listener.Fingerprint(newCert.Raw)
			row.Certificate = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: newCert.Raw}))
		}

		return tx.UpdateCertificate(ctx, cur.Fingerprint, row)
	})
	if err != nil {
		return "", err
	}

	err = s.reload(ctx)
	if narrows(old, row) {
		n := s.revoke(ctx, old.Fingerprint)
		s.log.Info("certificate changed: its connections closed", "name", row.Name, "fingerprint", old.Fingerprint, "connections", n)
	}

	return row.Fingerprint, err
}

// narrows reports whether a change may take away something the client could do: a
// new certificate, another type, or any change of its restriction or projects.
func narrows(old, cur db.Certificate) bool {
	return old.Fingerprint != cur.Fingerprint || old.Type != cur.Type ||
		old.Restricted != cur.Restricted || !slices.Equal(old.Projects, cur.Projects)
}

// Delete removes the certificate of a fingerprint or unique prefix and closes its
// client's connections: it is refused from the next request on, and its open
// websockets end now. When the client removes itself, the connection of its request
// (ctx) stays open for the response.
func (s *Store) Delete(ctx context.Context, fingerprint string) (api.Certificate, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	var gone db.Certificate
	err := s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		cur, err := tx.GetCertificate(ctx, fingerprint)
		if err != nil {
			return err
		}

		gone = *cur
		return tx.DeleteCertificate(ctx, cur.Fingerprint)
	})
	if err != nil {
		return api.Certificate{}, err
	}

	err = s.reload(ctx)
	if err != nil {
		// The row is gone but the cache still trusts it: drop it by hand.
		s.mu.Lock()
		delete(s.certs, gone.Fingerprint)
		s.mu.Unlock()
	}

	n := s.revoke(ctx, gone.Fingerprint)
	s.log.Info("certificate removed: its connections closed", "name", gone.Name, "fingerprint", gone.Fingerprint, "connections", n)
	return toAPI(gone), nil
}

// ParseCertificate reads a certificate given as PEM or as base64 of its DER bytes (what
// `lxc config trust add FILE` sends).
func ParseCertificate(s string) (*x509.Certificate, error) {
	if len(s) > maxCertificate {
		return nil, api.StatusErrorf(http.StatusBadRequest, "certificate is larger than %d bytes", maxCertificate)
	}

	var der []byte
	block, _ := pem.Decode([]byte(s))
	switch {
	case block != nil && block.Type == "CERTIFICATE":
		der = block.Bytes
	case block != nil:
		return nil, api.StatusErrorf(http.StatusBadRequest, "expected a PEM CERTIFICATE block, got %q", block.Type)
	default:
		var err error
		der, err = base64.StdEncoding.DecodeString(strings.TrimSpace(s))
		if err != nil {
			return nil, api.StatusErrorf(http.StatusBadRequest, "certificate is neither PEM nor base64 DER: %v", err)
		}
	}

	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, api.StatusErrorf(http.StatusBadRequest, "invalid certificate: %v", err)
	}

	return cert, nil
}

// maxProjects bounds the projects of a restricted certificate.
const maxProjects = 256

// Normalise checks a certificate record's fields and fills in the default type.
func Normalise(put api.CertificatePut) (api.CertificatePut, error) {
	bad := func(format string, a ...any) (api.CertificatePut, error) {
		return put, api.StatusErrorf(http.StatusBadRequest, format, a...)
	}

	if put.Type == "" {
		put.Type = api.CertificateTypeClient
	}

	if put.Type != api.CertificateTypeClient && put.Type != api.CertificateTypeMetrics {
		return bad("certificate type %q is not one of client, metrics", put.Type)
	}

	// Projects confine only a restricted certificate: accepting them on an unrestricted
	// one would let its owner believe it confined.
	if !put.Restricted && len(put.Projects) > 0 {
		return bad("projects only apply to a restricted certificate: set restricted to true")
	}

	if put.Restricted && put.Type != api.CertificateTypeClient {
		return bad("only client certificates can be restricted")
	}

	if len(put.Projects) > maxProjects {
		return bad("a certificate may name at most %d projects", maxProjects)
	}

	projects := []string{}
	for _, p := range put.Projects {
		err := project.ValidateName(p)
		if err != nil {
			return bad("certificate projects: %v", err)
		}

		if !slices.Contains(projects, p) {
			projects = append(projects, p)
		}
	}

	slices.Sort(projects)

	if len(put.Name) > maxName {
		return bad("certificate name is longer than %d bytes", maxName)
	}

	if strings.IndexFunc(put.Name, func(r rune) bool { return !unicode.IsPrint(r) }) >= 0 {
		return bad("certificate name %q has unprintable characters", put.Name)
	}

	put.Projects = projects
	return put, nil
}
