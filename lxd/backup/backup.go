// Package backup holds instance backups: the tarball format (LXD's, loosely), export of an
// instance with its snapshots into one, import of one (hostile input) as a new instance,
// and the files they are kept in. It reaches instances only through Instances: read access
// to an instance's trees under its lock, and the creation pipeline's entry point for
// instances that arrive as trees.
package backup

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/lxd/instance"
	"github.com/berth-dev/berth/shared/api"
)

// Backup tarball layout (gzip-compressed tar):
//
//	backup/index.yaml                     Index, always the first member
//	backup/container/metadata.yaml        the instance's image metadata and templates
//	backup/container/templates/…
//	backup/container/rootfs/…             merged root filesystem, owners as inside
//	backup/snapshots/<snap>/rootfs/…      each snapshot's root filesystem, likewise
const (
	indexName    = "backup/index.yaml"
	containerDir = "backup/container"
	snapshotsDir = "backup/snapshots"
)

// Index is backup/index.yaml.
type Index struct {
	Name      string   `yaml:"name"`
	Backend   string   `yaml:"backend"`
	Pool      string   `yaml:"pool"`
	Snapshots []string `yaml:"snapshots"`
	Config    struct {
		Container *api.Instance          `yaml:"container"`
		Snapshots []api.InstanceSnapshot `yaml:"snapshots"`
	} `yaml:"config"`
}

// Instances is what backups use of the instance manager (*instance.Creator).
type Instances interface {
	// ReadTrees runs fn with read access to an instance's trees under its lock.
	ReadTrees(ctx context.Context, name string, snapshots bool, fn func(ctx context.Context, t *instance.Trees) error) error
	// CreateFromTrees makes an instance whose trees a callback writes.
	CreateFromTrees(ctx context.Context, in instance.Incoming) error
}

// Config wires a Service.
type Config struct {
	Dir       string // BERTH_DIR: backups live in its backups/
	Instances Instances
	Log       *slog.Logger
}

// Service exports and imports backups.
type Service struct {
	cfg Config
	log *slog.Logger
}

// New returns a Service.
func New(cfg Config) *Service {
	return &Service{cfg: cfg, log: cfg.Log}
}

// Dir holds backup files (Dir()/<instance>/<backup>) and imports in progress.
func (s *Service) Dir() string { return filepath.Join(s.cfg.Dir, "backups") }

// RemoveLeftovers deletes the partial backup files of exports a crash interrupted.
func (s *Service) RemoveLeftovers() {
	matches, _ := filepath.Glob(filepath.Join(s.Dir(), "*", ".tmp-*"))
	for _, f := range matches {
		err := os.Remove(f)
		if err == nil {
			s.log.Info("removed partial backup of an interrupted export", "path", f)
		}
	}
}

// Forget removes an instance's backup files with the instance.
func (s *Service) Forget(name string) {
	_ = os.RemoveAll(filepath.Join(s.Dir(), name))
}
