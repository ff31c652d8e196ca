// Package cgroup creates and manages the host-side cgroups of a container:
// one Group per container under its daemon's parent ("berth" for the
// default state directory, see ParentFor) in every hierarchy Berth uses,
// delegated to the container's root so systemd inside can manage its own
// subtree.
package cgroup

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/lxd/sys"
)

// DefaultParent is the directory under each hierarchy's root that holds
// the container cgroups of the daemon using the default state directory:
// /sys/fs/cgroup/<controller>/berth/<name>. Layout.Parent overrides it.
const DefaultParent = "berth"

// defaultDir is the default state directory of berthd.
const defaultDir = "/var/lib/berth"

// ParentFor is the cgroup parent of the daemon whose state directory is dir:
// DefaultParent for the default one, "berth-<hash of dir>" for others, so
// that two daemons on one host (a test daemon beside `make run`'s) never
// share, and never remove, each other's container cgroups.
func ParentFor(dir string) string {
	if filepath.Clean(dir) == defaultDir {
		return DefaultParent
	}

	sum := sha256.Sum256([]byte(filepath.Clean(dir)))

	return DefaultParent + "-" + hex.EncodeToString(sum[:4])
}

// DefaultPidsMax is applied when Limits.PidsMax is 0, so a fork bomb inside
// one container cannot exhaust the host's pid space. -1 means no limit.
const DefaultPidsMax = 10000

// ErrBadName is returned for a group name that is not a single path element.
var ErrBadName = errors.New("invalid cgroup name")

// Limits are the resource limits Berth applies to a container. SetLimits
// writes every field, zero ones as "no limit", so it also lifts limits that
// a running container had before.
type Limits struct {
	MemoryBytes int64  `json:"memory_bytes,omitempty"`  // 0: unlimited
	CPUs        string `json:"cpus,omitempty"`          // "2" = quota of two CPUs; "0-1" or "0,2" = cpuset; "": unlimited
	CPUSet      string `json:"cpuset,omitempty"`        // explicit cpuset ("3" is CPU 3, not a count); wins over a set in CPUs
	CPUQuotaUs  int64  `json:"cpu_quota_us,omitempty"`  // CFS quota per CPUPeriodUs; wins over a count in CPUs
	CPUPeriodUs int64  `json:"cpu_period_us,omitempty"` // CFS period; 0: 100ms
	PidsMax     int64  `json:"pids_max,omitempty"`      // 0: DefaultPidsMax; -1: unlimited
}

// Stats is a snapshot of a container's resource use.
type Stats struct {
	Processes   int   `json:"processes"`
	CPUNanos    int64 `json:"cpu_ns"`
	MemoryBytes int64 `json:"memory_bytes"`
	Pids        int64 `json:"pids"` // tasks (threads) counted by the pids controller
}

// Group is one container's set of cgroups. Implementations: v1Group (legacy
// and hybrid hosts, using the unified hierarchy for delegation and freezing
// where it is mounted), systemdGroup (pure cgroup2 under systemd: a
// transient scope with Delegate=yes) and v2Group (pure cgroup2 otherwise).
type Group interface {
	// Name is the container name the group was made for.
	Name() string
	// Create makes the group's directories (and their parents); it is
	// idempotent.
	Create() error
	// AddProc moves pid into the group in every hierarchy.
	AddProc(pid int) error
	// Delegate hands the group's unified directory to uid:gid (host ids) so
	// a container's systemd can create and manage sub-cgroups.
	Delegate(uid, gid int) error
	// NamespacePath is the cgroup2 directory that becomes the root of the
	// container's cgroup namespace, "" on legacy hosts.
	NamespacePath() string
	// SetLimits writes the limits; zero values mean "no limit" (and lift
	// an earlier limit) except PidsMax, see DefaultPidsMax. It is used at
	// start and on a running container alike.
	SetLimits(Limits) error
	// Freeze stops every process of the group and returns once they are
	// frozen; Thaw resumes them.
	Freeze() error
	Thaw() error
	Frozen() (bool, error)
	// Stats reads the current resource use.
	Stats() (Stats, error)
	// Procs lists every process in the group's subtree.
	Procs() ([]int, error)
	// Remove kills any process left in the group and removes its
	// directories depth-first. It is idempotent.
	Remove() error
}

// New returns the Group of container name for the given host layout. It
// touches nothing until Create.
func New(name string, l Layout) (Group, error) {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\x00") {
		return nil, fmt.Errorf("%w: %q", ErrBadName, name)
	}

	if l.Mode == sys.CgroupUnified && l.SystemdBus != "" {
		g, err := newSystemdGroup(name, l)
		if err != nil {
			return nil, err
		}

		return g, nil
	}

	if l.Mode == sys.CgroupUnified {
		return &v2Group{name: name, dir: l.Unified + "/" + l.parent() + "/" + name, parent: l.Unified + "/" + l.parent(), root: l.Unified}, nil
	}

	g := &v1Group{name: name, dirs: map[string]string{}}
	for _, c := range v1Controllers {
		mnt, ok := l.V1[c]
		if ok {
			g.dirs[c] = mnt + "/" + l.parent() + "/" + name
		}
	}

	if l.Unified != "" {
		g.unified = l.Unified + "/" + l.parent() + "/" + name
	}

	return g, nil
}
