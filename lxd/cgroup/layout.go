package cgroup

import (
	"fmt"
	"path/filepath"
	"strings"
	"sync"

	"github.com/berth-dev/berth/lxd/sys"

	"github.com/berth-dev/berth/shared/mountinfo"
)

// v1Controllers are the v1 hierarchies a container is placed in on legacy
// and hybrid hosts. devices, hugetlb, net_cls and name=systemd are left out:
// an unprivileged container cannot use devices anyway, and systemd inside
// runs in unified mode on the cgroup2 tree we mount for it.
var v1Controllers = []string{"cpu", "cpuacct", "cpuset", "memory", "pids", "blkio", "freezer"}

// Layout is the host's cgroup layout, detected once at daemon start.
type Layout struct {
	Mode    sys.CgroupMode
	Unified string            // cgroup2 mount point, "" on legacy hosts
	V1      map[string]string // v1 controller -> its hierarchy's mount point
	// SystemdBus is the D-Bus address of the systemd that manages a pure
	// cgroup2 host's tree: groups are then transient scopes in Slice.
	// "" means Berth writes the tree itself.
	SystemdBus string
	// Warning, if set, says why a systemd host's tree is written directly
	// (its bus did not answer), for the caller to log.
	Warning string
	// Parent is the directory (or, under systemd, the unit name prefix) of
	// the daemon's container groups; "" means DefaultParent. See ParentFor.
	Parent string
}

func (l Layout) parent() string {
	if l.Parent == "" {
		return DefaultParent
	}

	return l.Parent
}

// Detect reads the host's cgroup layout, and on a pure cgroup2 host
// whether systemd manages it (see detectSystemd).
//
// A legacy or hybrid layout comes from the mount table, which grows with
// every running container (a parse costs milliseconds at a few hundred),
// while the v1 hierarchies are mounted at boot and stay: it is read once per
// process. (A spare monitor reads it while it waits, off the start's path.)
func Detect() (Layout, error) {
	detected.mu.Lock()
	defer detected.mu.Unlock()
	if detected.ok {
		return detected.l.clone(), nil
	}

	l, err := detect(realHost())
	if err == nil && l.Mode != sys.CgroupUnified {
		detected.l, detected.ok = l.clone(), true
	}

	return l, err
}

// detected is Detect's layout of a legacy or hybrid host.
var detected struct {
	mu sync.Mutex
	l  Layout
	ok bool
}

// clone copies l with its own V1 map (callers set fields of theirs).
func (l Layout) clone() Layout {
	v1 := make(map[string]string, len(l.V1))
	for k, v := range l.V1 {
		v1[k] = v
	}

	l.V1 = v1
	return l
}

func detect(env hostEnv) (Layout, error) {
	mode, unified, err := env.layout()
	if err != nil {
		return Layout{}, fmt.Errorf("detecting cgroup layout: %w", err)
	}

	l := Layout{Mode: mode, Unified: unified, V1: map[string]string{}}
	if mode == sys.CgroupUnified {
		detectSystemd(env, &l)
		return l, nil
	}

	mounts, err := mountinfo.ParseFile(filepath.Join(env.root, "proc/self/mountinfo"))
	if err != nil {
		return Layout{}, err
	}

	parseV1Mounts(mounts, l.V1)

	return l, nil
}

// parseV1Mounts fills controller -> mount point from the "cgroup" (v1) filesystems
// mounted at their root. The first mount of a controller wins.
func parseV1Mounts(mounts []mountinfo.Mount, out map[string]string) {
	for _, m := range mounts {
		if m.FSType != "cgroup" || m.Root != "/" {
			continue
		}

		for _, opt := range strings.Split(m.SuperOptions, ",") {
			if opt == "rw" || opt == "ro" {
				continue
			}

			_, seen := out[opt]
			if !seen {
				out[opt] = m.MountPoint
			}
		}
	}
}
