package device

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"

	"github.com/berth-dev/berth/lxd/setup"
)

// Start is the devices of one instance between Prepare and Started.
type Start struct {
	h       *Host
	in      *Instance
	devices map[string]map[string]string
	nics    []*run
	mounts  []setup.Mount
	unstage func()

	reserved    chan error // the NICs' reservations, made beside the rest of the start
	reserveOnce sync.Once
	reserveErr  error
}

// Prepare runs every device's prepare step before a start: the NICs first, together (each
// resolved, a 400 naming it, before any MAC is recorded or address reserved), then the
// instance's hotplug directory is made, then the other devices stage what the container's
// spec mounts. On an error nothing is left staged. It writes nothing in the instance's
// root: WriteResolvConf does, after the templates, which may run meanwhile.
//
// The NICs' reservations are made meanwhile, in the background: a new one writes the
// network's reservation files and signals dnsmasq (1.5-2 ms of a first start, on this
// VM), beside the templates and the staging. The caller asks Reserved before anything of
// the container runs, so that a failure (a full network) fails the start there; Started
// and Undo wait for them too, so no reservation is made after the start is undone.
func (h *Host) Prepare(ctx context.Context, in *Instance, devices map[string]map[string]string) (*Start, error) {
	nics, err := h.resolveNICs(ctx, in, devices)
	if err != nil {
		return nil, err
	}

	s := &Start{h: h, in: in, devices: devices, nics: nics, reserved: make(chan error, 1)}
	go func() { s.reserved <- reserveNICs(nics) }()

	err = h.setupHotplugDir(in.Name)
	if err != nil {
		_ = s.waitReserved()
		return nil, err
	}

	s.mounts, s.unstage, err = h.stage(in, devices)
	if err != nil {
		_ = s.waitReserved()
		removeHotplugDir(h.hotplugDir(in.Name))
		return nil, err
	}

	return s, nil
}

// Reserved waits for the NICs' reservations and says how they went.
func (s *Start) Reserved() error { return s.waitReserved() }

// waitReserved waits for the NICs' reservations and says how they went.
func (s *Start) waitReserved() error {
	s.reserveOnce.Do(func() { s.reserveErr = <-s.reserved })
	return s.reserveErr
}

// Mounts is what the devices add to the container's spec: the hotplug directory, then
// the staged devices.
func (s *Start) Mounts() []setup.Mount {
	return s.h.specMounts(s.in, s.mounts)
}

// Unmounts is what the monitor unmounts on the host when the container stops for good:
// the hotplug directory and the staged mounts. Staged devices stay while the container
// runs: an in-place reboot binds them again.
func (s *Start) Unmounts() []string {
	return s.h.unmounts(s.in, s.mounts)
}

// WriteResolvConf points the container's resolv.conf at the network of its first managed
// NIC, unless the file is the image's or the user's. Prepare leaves it to its caller, to
// follow the image's templates (which may write that file themselves, and then win).
func (s *Start) WriteResolvConf() {
	s.h.writeNICResolvConf(s.in, s.nics)
}

// Undo removes what Prepare staged, for a start that fails before Started.
func (s *Start) Undo() {
	_ = s.waitReserved()
	s.unstage()
	removeHotplugDir(s.h.hotplugDir(s.in.Name))
}

// Started runs once the container's init (pid) runs: the NICs are attached, all or none
// (an error fails the start), then every other device's started step runs; their
// failures are logged and the container runs on (as LXD does for a proxy whose port is
// taken, the error is visible in the log).
func (s *Start) Started(ctx context.Context, pid int) error {
	err := s.waitReserved()
	if err != nil {
		return err
	}

	err = s.h.attachNICs(ctx, s.in, pid, s.nics)
	if err != nil {
		return err
	}

	s.h.started(s.in, pid, s.devices)
	return nil
}

// Reattach attaches the devices of a running instance again after a reboot inside, for
// its new init pid: the filters of the dead ports are dropped and the NICs attached again
// with the same MACs and reservations, then the devices' started steps run.
func (h *Host) Reattach(ctx context.Context, in *Instance, pid int, devices map[string]map[string]string) error {
	if h.Networks != nil {
		for k, host := range in.Config {
			if isHostNameKey(k) {
				_ = dropHostEnd(h.Networks, host)
			}
		}

		nics, err := h.prepareNICs(ctx, in, devices)
		if err != nil {
			return err
		}

		err = h.attachNICs(ctx, in, pid, nics)
		if err != nil {
			return err
		}
	}

	h.started(in, pid, devices)
	return nil
}

// Stopped cleans up after the container of instance name (its directory instDir) has
// ended: its NICs' host ends and filters, its hotplug directory, and what its devices
// left staged: mount points (unmounted by the monitor) and device nodes. Proxies' pid and
// log files stay.
func (h *Host) Stopped(name, instDir string) {
	h.stoppedNICs(name)
	removeHotplugDir(h.hotplugDir(name))

	dir := stageDir(instDir)
	ents, _ := os.ReadDir(dir)
	for _, e := range ents {
		if !e.Type().IsRegular() {
			unstage(filepath.Join(dir, e.Name()))
		}
	}
}

// stage runs the prepare step of every device but the NICs and returns the extra mounts
// and a cleanup for what was staged on the host (run it once the container has its own
// copy, or on failure).
func (h *Host) stage(in *Instance, devices map[string]map[string]string) ([]setup.Mount, func(), error) {
	err := makeStageDir(in)
	if err != nil {
		return nil, nil, err
	}

	var mounts []setup.Mount
	var staged []string
	cleanup := func() {
		for _, p := range staged {
			unstage(p)
		}
	}

	for _, dev := range Sorted(devices) {
		d, ok := types[devices[dev]["type"]]
		if !ok || isNIC(devices[dev]) {
			continue
		}

		r := h.run(in, dev, devices[dev], 0)
		ms, err := d.prepare(r)
		if err != nil {
			cleanup()
			return nil, nil, fmt.Errorf("preparing device %q: %w", dev, err)
		}

		if len(ms) > 0 {
			staged = append(staged, r.stagePath())
		}

		mounts = append(mounts, ms...)
	}

	return mounts, cleanup, nil
}

// started runs the started step of every device but the NICs; failures are logged.
func (h *Host) started(in *Instance, pid int, devices map[string]map[string]string) {
	for _, dev := range Sorted(devices) {
		d, ok := types[devices[dev]["type"]]
		if !ok || isNIC(devices[dev]) {
			continue
		}

		err := d.started(h.run(in, dev, devices[dev], pid))
		if err != nil {
			h.Log.Warn("starting device", "instance", in.Name, "device", dev, "err", err)
		}
	}
}

// specMounts is Spec.Mounts's part of the devices for these staged mounts: the hotplug
// directory, then the devices.
func (h *Host) specMounts(in *Instance, mounts []setup.Mount) []setup.Mount {
	return append([]setup.Mount{h.hotplugMount(in.Name)}, mounts...)
}

// unmounts is Spec.Unmounts's part of the devices for these staged mounts: the hotplug
// directory, then the staged mounts (a device node is not a mount; unmounting it is a
// harmless no-op).
func (h *Host) unmounts(in *Instance, mounts []setup.Mount) []string {
	out := []string{h.hotplugDir(in.Name)}

	stage := in.stageDir() + "/"
	for _, mnt := range mounts {
		if strings.HasPrefix(mnt.Source, stage) {
			out = append(out, mnt.Source)
		}
	}

	return out
}
