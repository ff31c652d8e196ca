// Package device implements the devices of Berth's instances: disk, unix-char, unix-block,
// proxy, none and nic. Each type is one implementation of the small device interface
// (validate, prepare before a start, started once init runs, attach and detach on a
// running container); the instance life cycle (lxd/instance) calls the few entry points
// of this package at start, update, stop and delete, and never a device directly.
//
// A device sees a narrow context, not the instance manager: its instance's name, id map,
// init pid and staging directory, its own name and expanded config, and the few
// capabilities of the daemon it needs (Host: the proxy launcher, the managed networks,
// the record of the NICs' volatile keys, the hotplug directories).
package device

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"strings"

	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/lxd/network"
	"github.com/berth-dev/berth/lxd/setup"
)

// errRequiresRestart is returned when a device change cannot be made to a running
// container; the update is refused with 400 and nothing is applied.
var errRequiresRestart = errors.New("requires restart")

// Host is what devices may use of the daemon. One per daemon (NewHost).
type Host struct {
	// Dir is the daemon's state directory (BERTH_DIR): no disk may share it, and the
	// instances' hotplug directories live in Dir/shmounts.
	Dir string
	// Exe is the sealed copy of the daemon binary; a proxy device's forwarder runs it.
	Exe string
	// Networks are the managed networks NICs attach to; nil: NICs are refused.
	Networks *network.Manager
	// Records keeps the volatile keys the NICs set on their instance.
	Records Records
	Log     *slog.Logger
}

// Records reads and writes an instance's volatile keys: the MAC a NIC gets once
// (volatile.<dev>.hwaddr) and the host end of its veth (volatile.<dev>.host_name), by
// which a stop removes it.
type Records interface {
	// Volatile returns the instance's own config as stored now.
	Volatile(ctx context.Context, inst string) (map[string]string, error)
	// SetVolatile sets and unsets keys of the instance's config in one write.
	SetVolatile(ctx context.Context, inst string, set map[string]string, unset []string) error
}

// NewHost returns the devices' view of the daemon. It records h.Dir as the directory no
// disk may share, for Validate (which has no Host).
func NewHost(h Host) *Host {
	dir := h.Dir
	daemonDir.Store(&dir)

	return &h
}

// Instance is one instance as its devices see it.
type Instance struct {
	Name string
	// Dir is the instance's own directory; its devices are staged in Dir/devices.
	Dir string
	IDs idmap.Set
	// Config is the instance's own (not expanded) config: the NICs' volatile keys.
	Config map[string]string
	// Rootfs is the instance's root mounted on the host while it starts, "" otherwise (a
	// NIC on a managed network points its resolv.conf at the network's DNS).
	Rootfs string
}

// stageDir is the host directory holding the instance's staged mounts, device nodes and
// proxies' pid files.
func (in *Instance) stageDir() string { return stageDir(in.Dir) }

func stageDir(instDir string) string { return filepath.Join(instDir, "devices") }

// run is what one device acts on: one device of one instance, and the capabilities of the
// daemon a device may use. It is a device's whole view: no device sees the instance
// manager, the database or the other devices.
type run struct {
	inst    string            // instance name
	name    string            // device name
	conf    map[string]string // the device's expanded config
	ids     idmap.Set         // the instance's id map
	initPID int               // the container's init on the host, 0 before it runs
	stage   string            // the instance's staging directory on the host
	hotplug string            // host side of the instance's hotplug directory
	exe     string            // the proxy launcher: the sealed daemon binary
	nets    *network.Manager  // the managed networks (nic)
	local   map[string]string // the instance's own config: its NICs' volatile keys (nic)
	nic     *nic              // the NIC as prepare resolved it (nic)
}

// run returns the context of device dev (conf) of instance in, with pid its init.
func (h *Host) run(in *Instance, dev string, conf map[string]string, pid int) *run {
	return &run{
		inst: in.Name, name: dev, conf: conf, ids: in.IDs, initPID: pid,
		stage: in.stageDir(), hotplug: h.hotplugDir(in.Name),
		exe: h.Exe, nets: h.Networks, local: in.Config,
	}
}

func (r *run) stagePath() string {
	return filepath.Join(r.stage, r.name)
}

// device is one device type.
type device interface {
	// validate checks the device's keys; errors name the key.
	validate(conf map[string]string) error
	// prepare runs before the container starts and returns mounts for its spec.
	prepare(r *run) ([]setup.Mount, error)
	// started runs once the container's init runs (processes living beside it, a NIC's
	// veth in its network namespace).
	started(r *run) error
	// attach adds the device to a running container, or returns errRequiresRestart.
	attach(r *run) error
	// detach removes the device from a running container, or returns errRequiresRestart.
	detach(r *run) error
}

// types is the static table of the device types.
var types = map[string]device{
	"disk":       diskDevice{},
	"unix-char":  unixDevice{char: true},
	"unix-block": unixDevice{},
	"proxy":      proxyDevice{},
	"none":       noneDevice{},
	"nic":        nicDevice{},
}

// Validate checks one device's keys against its type; a type that is not in the table is
// the caller's to refuse.
func Validate(conf map[string]string) error {
	d, ok := types[conf["type"]]
	if !ok {
		return nil
	}

	return d.validate(conf)
}

type noneDevice struct{}

func (noneDevice) validate(conf map[string]string) error { return onlyKeys(conf) }
func (noneDevice) prepare(*run) ([]setup.Mount, error)   { return nil, nil }
func (noneDevice) started(*run) error                    { return nil }
func (noneDevice) attach(*run) error                     { return nil }
func (noneDevice) detach(*run) error                     { return nil }

// onlyKeys refuses any key but type and the allowed ones.
func onlyKeys(conf map[string]string, allowed ...string) error {
	for k := range conf {
		if k == "type" {
			continue
		}

		found := false
		for _, a := range allowed {
			if k == a {
				found = true
				break
			}
		}

		if !found {
			return fmt.Errorf("unknown key %q", k)
		}
	}

	return nil
}

// containerPath checks a path inside the container: absolute, clean, not the root.
func containerPath(key, p string) error {
	if p == "" {
		return fmt.Errorf("%q is required", key)
	}

	if !filepath.IsAbs(p) {
		return fmt.Errorf("%q must be an absolute path, not %q", key, p)
	}

	if filepath.Clean(p) == "/" {
		return fmt.Errorf("%q cannot be /", key)
	}

	return nil
}

// Sorted returns the names of devices in the order they are prepared: shallow paths
// first, so a disk at /srv is mounted before one at /srv/data, then by name.
func Sorted(devices map[string]map[string]string) []string {
	names := make([]string, 0, len(devices))
	for n := range devices {
		names = append(names, n)
	}

	sort.Slice(names, func(i, j int) bool {
		pi, pj := devices[names[i]]["path"], devices[names[j]]["path"]
		ci, cj := strings.Count(pi, "/"), strings.Count(pj, "/")
		if ci != cj {
			return ci < cj
		}

		return names[i] < names[j]
	})

	return names
}
