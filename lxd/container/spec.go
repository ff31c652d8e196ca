package container

import (
	"os"
	"time"

	"github.com/berth-dev/berth/lxd/cgroup"
	"github.com/berth-dev/berth/lxd/confine"
	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/lxd/setup"
)

// Spec describes a container to start. It is written to RunDir/spec.json
// for the monitor.
type Spec struct {
	Name     string            `json:"name"`     // instance key (shared/project): names its host objects
	Hostname string            `json:"hostname"` // the UTS name: its name in its project ("" is Name)
	UUID     string            `json:"uuid"`     // container_uuid for PID 1's environment
	Rootfs   string            `json:"rootfs"`   // host path of the already-mounted root filesystem
	IDMap    idmap.Set         `json:"idmap"`    // container ids 0..Size map to HostUID/HostGID..
	RunDir   string            `json:"run_dir"`  // per-instance runtime dir, created by Start
	Env      map[string]string `json:"env"`      // extra environment for PID 1
	Unmounts []string          `json:"unmounts"` // host mount points unmounted, in order, after init exits
	Limits   Limits            `json:"limits"`
	Mounts   []Mount           `json:"mounts"` // extra binds into the container, made last (setup.CloneMounts)

	// Seccomp is the filter init and every exec get (confine.Compile); nil: none.
	Seccomp *confine.Filter `json:"seccomp,omitempty"`

	// ShutdownTimeout is how long a stop on the monitor's own SIGTERM (the host shutting
	// down) waits for init before it kills it: boot.host_shutdown_timeout. nil: 30 s.
	ShutdownTimeout *time.Duration `json:"shutdown_timeout,omitempty"`

	// CgroupParent holds the daemon's container cgroups (cgroup.ParentFor);
	// "" is cgroup.DefaultParent, as for containers started before it existed.
	CgroupParent string `json:"cgroup_parent,omitempty"`

	// Held are open handles (O_PATH) of some Mounts' sources, by source: a monitor
	// that was a spare gets copies and clones those mounts from them instead of
	// looking the paths up (setup.CloneKernelViews says why). The caller closes them.
	Held map[string]*os.File `json:"-"`
}

// Mount is an extra bind mount (setup.Mount): a host Source on a Target inside the root.
type Mount = setup.Mount

// Limits are the container's resource limits (see cgroup.Limits: PidsMax
// 0 means cgroup.DefaultPidsMax, -1 unlimited).
type Limits = cgroup.Limits

// Stats is a snapshot of the container's resource use.
type Stats = cgroup.Stats

// Exit says how init ended.
type Exit struct {
	Code   int    `json:"code"`   // exit status, if init exited
	Signal int    `json:"signal"` // terminating signal, if killed by one
	Killed bool   `json:"killed"` // the monitor had to SIGKILL init
	Reboot bool   `json:"reboot"` // init asked for a reboot (SIGHUP from reboot(2) in a pid namespace)
	Reason string `json:"reason"` // "poweroff", "reboot", "exit", "killed", "signal"
	// Term: the monitor stopped the container because it got SIGTERM itself, as every
	// process does when the host shuts down. Such a container is still meant to run.
	Term bool `json:"term,omitempty"`
	// Requested: a stop was asked of the monitor through its socket (the daemon's),
	// whatever init's end then looked like (a reboot under way, a SIGKILL).
	Requested bool      `json:"requested,omitempty"`
	At        time.Time `json:"at"`
}

// Files in RunDir.
const (
	specFile    = "spec.json"
	socketFile  = "monitor.sock"
	pidFile     = "monitor.pid"
	logFile     = "monitor.log"
	exitFile    = "exit.json"
	consoleFile = "console.log"
)

// hostname is the container's UTS name: Hostname, or Name for a spec from before
// projects (a monitor that outlives the upgrade re-reads its spec).
func (s *Spec) hostname() string {
	if s.Hostname != "" {
		return s.Hostname
	}

	return s.Name
}
