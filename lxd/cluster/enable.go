package cluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/listener"
	"github.com/berth-dev/berth/shared/api"
)

// BackupFile is what berth.db becomes once the host is clustered: a read-only copy of
// the inventory as it was copied into dqlite.
const BackupFile = "berth.db.pre-cluster"

// Levels are what a member records of its software and checks on join: its schema
// version, its API extension count and its architecture.
type Levels struct {
	SchemaVersion int
	APIExtensions int
	Arch          string
}

// EnableRequest turns this host into a one-member cluster.
type EnableRequest struct {
	Name    string
	Address string // cluster.https_address: where the HTTPS API already listens
	Levels  Levels
	FileDB  *db.DB // berth.db, the daemon's inventory until now
}

// begin marks an enable or join as under way: one at a time, and never on a member.
func (s *Service) begin() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.enabled {
		return api.StatusErrorf(http.StatusBadRequest, "this server is already clustered as %q", s.self.Name)
	}

	if s.changing {
		return api.StatusErrorf(http.StatusConflict, "clustering is being enabled or joined already")
	}

	s.changing = true
	return nil
}

func (s *Service) end() {
	s.mu.Lock()
	s.changing = false
	s.mu.Unlock()
}

// Enable copies the inventory into a new single-member dqlite cluster and records the
// switch in local.db. It holds berth.db's writer from the copy on and never gives it
// back: the caller must re-exec the daemon (which then opens the cluster database) once
// the client has its answer, since nothing written to berth.db from now on would be
// kept. On an error before local.db is written the host is left as it was and the
// writer is released.
func (s *Service) Enable(ctx context.Context, req EnableRequest) error {
	err := ValidMemberName(req.Name)
	if err != nil {
		return api.StatusErrorf(http.StatusBadRequest, "%v", err)
	}

	if req.Address == "" {
		return api.StatusErrorf(http.StatusBadRequest, "clustering needs a network address: set core.https_address (or cluster.https_address) first")
	}

	c, err := s.beginChange("enable")
	if err != nil {
		return err
	}

	defer c.undo()

	// The server certificate becomes the cluster certificate: clients that pinned this
	// host keep working with every member.
	certPEM, keyPEM, err := listener.ReadCertFiles(s.dir, listener.CertFile, listener.KeyFile)
	if err != nil {
		return fmt.Errorf("reading the server certificate: %w", err)
	}

	err = removeHalfMade(s.dir)
	if err != nil {
		return err
	}

	err = listener.WriteCertFiles(s.dir, listener.ClusterCertFile, listener.ClusterKeyFile, certPEM, keyPEM)
	if err != nil {
		return fmt.Errorf("writing the cluster certificate: %w", err)
	}

	cert, err := listener.ParseCert(certPEM, keyPEM)
	if err != nil {
		return err
	}

	c.node, err = bootstrapNode(ctx, s.dir, req.Address, cert)
	if err != nil {
		return fmt.Errorf("starting the database node: %w", err)
	}

	// From here on nothing is written to berth.db: the copy is all there is.
	err = c.holdWriter(req.FileDB)
	if err != nil {
		return err
	}

	err = db.CopyInto(ctx, req.FileDB, c.node.DB())
	if err != nil {
		return fmt.Errorf("copying the inventory into the cluster database: %w", err)
	}

	global, err := db.OpenCluster(ctx, c.node.DB(), db.WithTransient(transient))
	if err != nil {
		return fmt.Errorf("opening the cluster database: %w", err)
	}

	err = global.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		return tx.ClusterMemberSetIdentity(ctx, db.MemberRow{
			ID: 1, Name: req.Name, Address: req.Address,
			SchemaVersion: req.Levels.SchemaVersion, APIExtensions: req.Levels.APIExtensions, Arch: req.Levels.Arch,
		})
	})
	if err != nil {
		return fmt.Errorf("naming this member: %w", err)
	}

	return c.finish(ctx, req.FileDB, local{MemberID: 1, Name: req.Name, Address: req.Address})
}

// commit writes local.db (the mode switch: from now on the daemon starts clustered)
// and removes berth.db, whose backup is already written.
func (s *Service) commit(ctx context.Context, l local) error {
	conn, err := db.OpenLocal(ctx, s.dir, true)
	if err != nil {
		return err
	}

	err = writeLocal(ctx, conn, l)
	_ = conn.Close()
	if err != nil {
		_ = os.Remove(filepath.Join(s.dir, "database", db.LocalFile))
		return err
	}

	err = db.RemoveFile(s.dir)
	if err != nil {
		// The next start removes it: local.db says the host is clustered.
		s.log.Warn("removing berth.db after its backup", "err", err)
	}

	return nil
}

// finishSwitch removes a berth.db a clustered member still has (the switch stopped
// between local.db and the removal): its backup exists.
func finishSwitch(dir string) error {
	if !db.FileExists(dir) {
		return nil
	}

	_, err := os.Stat(filepath.Join(dir, "database", BackupFile))
	if err != nil {
		return errors.New("clustered, but berth.db is still there without its backup: refusing to start (move it away to continue)")
	}

	return db.RemoveFile(dir)
}
