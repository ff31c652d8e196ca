package cluster

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/listener"
)

// Config is what the service needs from the daemon.
type Config struct {
	Dir string // the state directory
	Log *slog.Logger
	// Levels are this binary's, for the rolling-upgrade gate at OpenDB (upgrade.go).
	Levels Levels
}

// Service is the membership core on the daemon (d.cluster). A nil *Service (a daemon
// under test without one) answers as a host that is not clustered.
type Service struct {
	dir string
	log *slog.Logger

	mu        sync.RWMutex
	localDB   *sql.DB // nil on a host never clustered
	self      local
	enabled   bool
	db        *db.DB            // the inventory: dqlite's once clustered
	cert      *listener.Cert    // the cluster certificate, clustered only
	node      node              // the dqlite node, clustered only
	threshold time.Duration     // cluster.offline_threshold
	changing  bool              // an enable or join is under way
	levels    Levels            // this binary's (Config.Levels)
	left      map[string]string // the own config kept by a member that left (leave.go)

	// A cluster certificate swap (certificate.go): swapMu is taken before mu.
	swapMu       sync.Mutex
	swap         certSwap
	onCertChange func(memberFingerprints []string)
}

// Open reads local.db: a member that has one starts clustered. A host without one
// starts as before; a database/global left by an interrupted enable or join is removed
// so the next attempt starts clean.
func Open(ctx context.Context, cfg Config) (*Service, error) {
	s := &Service{dir: cfg.Dir, log: cfg.Log, threshold: DefaultOfflineThreshold, levels: cfg.Levels}
	// A member removed from its cluster resets itself first (leave.go).
	kept, err := finishLeave(ctx, cfg.Dir)
	if err != nil {
		return nil, err
	}

	s.left = kept
	conn, err := db.OpenLocal(ctx, cfg.Dir, false)
	if err != nil {
		return nil, err
	}

	if conn != nil {
		l, ok, err := readLocal(ctx, conn)
		if err != nil {
			_ = conn.Close()
			return nil, err
		}

		if ok {
			err = seedLocalConfig(ctx, conn, l)
			if err != nil {
				_ = conn.Close()
				return nil, err
			}
		}

		s.localDB, s.self, s.enabled = conn, l, ok
	}

	if !s.enabled {
		err = removeHalfMade(cfg.Dir)
		if err != nil {
			return nil, err
		}

		return s, nil
	}

	err = finishSwitch(cfg.Dir)
	if err != nil {
		return nil, err
	}

	s.cert, err = listener.LoadCertFiles(cfg.Dir, listener.ClusterCertFile, listener.ClusterKeyFile)
	if err != nil {
		return nil, fmt.Errorf("loading the cluster certificate: %w", err)
	}

	return s, nil
}

// OpenDB starts this member's dqlite node and opens the global inventory on it. Only
// for a clustered member; the daemon opens berth.db otherwise.
func (s *Service) OpenDB(ctx context.Context) (*db.DB, error) {
	if !s.enabled {
		return nil, errors.New("not clustered")
	}

	n, err := openNode(ctx, s.dir, s.self.Address, s.cert)
	if err != nil {
		return nil, fmt.Errorf("starting the database node: %w", err)
	}

	// Before any schema update: a member newer than some other waits, an older one
	// refuses to start.
	err = s.waitUpgrade(ctx, n.DB())
	if err != nil {
		_ = n.Close()
		return nil, err
	}

	d, err := db.OpenCluster(ctx, n.DB(), db.WithTransient(transient))
	if err != nil {
		_ = n.Close()
		return nil, fmt.Errorf("opening the cluster database: %w", err)
	}

	s.mu.Lock()
	s.node, s.db = n, d
	s.mu.Unlock()
	return d, nil
}

// SetDB gives the service the inventory the daemon opened (berth.db when not clustered).
func (s *Service) SetDB(d *db.DB) {
	s.mu.Lock()
	s.db = d
	s.mu.Unlock()
}

// SetOfflineThreshold sets cluster.offline_threshold.
func (s *Service) SetOfflineThreshold(d time.Duration) {
	if d <= 0 {
		d = DefaultOfflineThreshold
	}

	s.mu.Lock()
	s.threshold = d
	s.mu.Unlock()
}

// Close stops the dqlite node, if any, and closes local.db. The daemon closes the
// inventory itself first.
func (s *Service) Close() {
	if s == nil {
		return
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.node != nil {
		err := s.node.Close()
		if err != nil {
			s.log.Warn("stopping the database node", "err", err)
		}

		s.node = nil
	}

	if s.localDB != nil {
		_ = s.localDB.Close()
		s.localDB = nil
	}
}

// Enabled reports whether this daemon is a cluster member.
func (s *Service) Enabled() bool {
	if s == nil {
		return false
	}

	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.enabled
}

// Self is this member: id 1, "none" when not clustered.
func (s *Service) Self() Member {
	if s == nil {
		return Member{ID: 1, Name: NoneName, Online: true, FailureDomain: "default", Roles: []string{}}
	}

	s.mu.RLock()
	defer s.mu.RUnlock()
	if !s.enabled {
		return Member{ID: 1, Name: NoneName, Online: true, FailureDomain: "default", Roles: []string{}}
	}

	return Member{ID: s.self.MemberID, Name: s.self.Name, Address: s.self.Address, Online: true, FailureDomain: "default", Roles: []string{}}
}

// Cert is the cluster certificate (nil when not clustered): a member serves HTTPS with it.
func (s *Service) Cert() *listener.Cert {
	if s == nil {
		return nil
	}

	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.cert
}

// ClientTLS is the TLS configuration of member-to-member calls: the cluster certificate
// as client certificate, and the server's certificate must be exactly it (pinned; the
// certificate names the first member's host, so its names are not checked). Nil when
// not clustered.
//
// Both are read at each handshake: while the cluster certificate is replaced
// (certificate.go) the one presented is the current one, and a server presenting
// either of the swap's two is accepted.
func (s *Service) ClientTLS() *tls.Config {
	if s.Cert() == nil {
		return nil
	}

	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // replaced by the pin below
		NextProtos:         []string{"http/1.1"},
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
			c := s.Cert()
			if c == nil {
				return nil, errors.New("not clustered any more")
			}

			return &c.KeyPair, nil
		},
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 || !slices.Contains(s.MemberFingerprints(), listener.Fingerprint(raw[0])) {
				return errors.New("the server does not present the cluster certificate")
			}

			return nil
		},
	}
}

// pinnedTLS accepts exactly the server certificate of fingerprint fp.
func pinnedTLS(fp string, client *tls.Certificate) *tls.Config {
	cfg := &tls.Config{
		MinVersion:         tls.VersionTLS13,
		InsecureSkipVerify: true, // replaced by the pin below
		NextProtos:         []string{"http/1.1"},
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			if len(raw) == 0 || listener.Fingerprint(raw[0]) != fp {
				return errors.New("the server does not present the cluster certificate")
			}

			return nil
		},
	}

	if client != nil {
		cfg.Certificates = []tls.Certificate{*client}
	}

	return cfg
}

// Members lists the members with their online state (heartbeat within the offline
// threshold; this member always) and database roles.
func (s *Service) Members(ctx context.Context) ([]Member, error) {
	if s == nil {
		return []Member{s.Self()}, nil
	}

	s.mu.RLock()
	d, n, threshold, selfID, enabled := s.db, s.node, s.threshold, s.self.MemberID, s.enabled
	s.mu.RUnlock()
	if !enabled {
		return []Member{s.Self()}, nil
	}

	var rows []db.MemberRow
	err := d.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		rows, err = tx.ClusterMembers(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}

	roles := map[string][]string{}
	if n != nil {
		roles = n.Roles(ctx)
	}

	out := make([]Member, 0, len(rows))
	for _, r := range rows {
		m := memberOf(r)
		m.Online = r.ID == selfID || IsOnline(r.Heartbeat, time.Now(), threshold)
		if rs, ok := roles[r.Address]; ok {
			m.Roles = rs
		}

		out = append(out, m)
	}

	return out, nil
}

// Member is the member of that name (a 404 when there is none).
func (s *Service) Member(ctx context.Context, name string) (Member, error) {
	ms, err := s.Members(ctx)
	if err != nil {
		return Member{}, err
	}

	for _, m := range ms {
		if m.Name == name {
			return m, nil
		}
	}

	return Member{}, notFound(name)
}
