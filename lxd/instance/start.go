package instance

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-dev/berth/lxd/container"
	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/device"
	"github.com/berth-dev/berth/lxd/images"
	"github.com/berth-dev/berth/lxd/lxcfs"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
	"github.com/berth-dev/berth/shared/revert"
)

// Start boots an instance: mount its root, render pending templates, hand it to a monitor.
func (ru *Runner) Start(ctx context.Context, name string) error {
	unlock := ru.host.lock(name)
	defer unlock()

	return ru.start(ctx, name)
}

// Preconditions: the instance lock is held.
func (ru *Runner) start(ctx context.Context, name string) error {
	if ru.host.monitor(name) != nil {
		return api.StatusErrorf(http.StatusBadRequest, "the instance is already running")
	}

	l, err := ru.host.loadExpanded(ctx, name)
	if err != nil {
		return err
	}

	inst, ids, config, devices := l.inst, l.ids, l.config, l.devices

	// The limit lives in the pool; setting it again at each start follows changes made
	// while it could not be applied (a restored snapshot's devices).
	err = ru.conf.applyRootSize(name, devices)
	if err != nil {
		return err
	}

	seccomp, err := seccompOf(config)
	if err != nil {
		return err
	}

	pool, err := ru.pools.of(devices)
	if err != nil {
		return err
	}

	r := revert.New()
	defer r.Fail()

	rootfs, err := pool.MountInstance(name, ids)
	if err != nil {
		return fmt.Errorf("mounting root of %q: %w", name, err)
	}

	r.Add(func() { _ = pool.UnmountInstance(name) })

	// The templates render in the root while the devices are prepared (the NICs'
	// addresses reserved, the disks staged outside it): a first start's templates copy
	// files up into the overlay. The network's resolv.conf is written after both, so that
	// an image's own resolv.conf template wins, as it did. Every return below waits for
	// the templates: the root is unmounted on a failure.
	trigger := inst.Config["volatile.apply_template"]
	rendered := make(chan error, 1)
	go func() { rendered <- ru.renderTemplates(inst, rootfs, trigger, config, devices) }()

	limits, err := ru.conf.limitsOf(name, config)
	if err != nil {
		<-rendered
		return err
	}

	devs, err := ru.devices.Prepare(ctx, ru.host.deviceInstance(inst, ids, rootfs), devices)
	terr := <-rendered
	if err == nil {
		// Staged devices stay while the container runs: an in-place reboot binds them
		// again. The monitor unmounts them when it stops for good.
		r.Add(devs.Undo)
	}

	if terr != nil {
		return terr // the templates' error first, as when they ran first
	}

	if err != nil {
		return err
	}

	// The NICs' reservations were made meanwhile: one that failed (a full network) fails
	// the start here, before anything of the container runs.
	err = devs.Reserved()
	if err != nil {
		return err
	}

	devs.WriteResolvConf()

	spec := container.Spec{
		Name:     name,
		Hostname: project.Name(name),
		UUID:     inst.Config["volatile.uuid"],
		Rootfs:   rootfs,
		IDMap:    ids,
		RunDir:   ru.host.runDir(name),
		Env:      envFromConfig(config),
		Unmounts: specUnmounts(pool, name, devs.Unmounts()), // the pool in hand: no read
		Limits:   limits,
		Mounts:   specMounts(devs.Mounts()),
		Seccomp:  seccomp,

		ShutdownTimeout: HostShutdownTimeout(config),
		CgroupParent:    ru.cgroupParent,
	}

	spec.Held = lxcfs.Handles(lxcfs.Dir(), spec.Mounts)
	mon, err := ru.spares.Start(ctx, spec, ru.log)
	// Once systemd is past its own exec (startedAndBooted), whatever happens.
	defer ru.spares.Refill()

	lxcfs.CloseHandles(spec.Held)
	var boot *container.BootError
	if errors.As(err, &boot) {
		return boot // said as a later death is (startedAndBooted)
	}

	if err != nil {
		return fmt.Errorf("starting %q: %w", name, err)
	}

	err = startedAndBooted(ctx, devs, mon)
	if err != nil {
		err = mon.BootFailure(err)
		_, _ = mon.Stop(ctx, 0, true)
		_ = mon.Close()
		ru.devices.Stopped(name, ru.host.instanceDir(name)) // filters of NICs attached before init died
		return err
	}

	r.Success()
	ru.followOnce(name, mon)

	ru.host.setMonitor(name, mon)
	go ru.watch(name, mon)

	now := time.Now().UTC()
	err = ru.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		err := tx.UpdateInstanceConfig(ctx, name, map[string]string{"volatile.last_state.power": "RUNNING"}, []string{"volatile.apply_template"})
		if err != nil {
			return err
		}

		return tx.UpdateInstanceLastUsed(ctx, name, now)
	})
	if err != nil {
		ru.log.Warn("recording start", "instance", name, "err", err)
	}

	ru.host.event("instance-started", name, nil)
	return nil
}

// startedAndBooted attaches the devices of a container whose init runs while it waits
// for systemd to be past the point where it dies of the host (Monitor.WaitBoot): neither
// waits for the other, and a start fails if either does (an init that died says why).
func startedAndBooted(ctx context.Context, devs *device.Start, mon *container.Monitor) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()

	booted := make(chan error, 1)
	go func() { booted <- mon.WaitBoot(ctx) }()

	err := devs.Started(ctx, mon.InitPID())
	if err != nil {
		cancel()
		<-booted
		return err
	}

	return <-booted
}

// renderTemplates renders a pending create/copy/rename trigger, then the start trigger.
func (ru *Runner) renderTemplates(inst *db.Instance, rootfs, pending string, config map[string]string, devices map[string]map[string]string) error {
	metaDir := ru.host.instanceDir(inst.Name)
	data, err := os.ReadFile(filepath.Join(metaDir, "metadata.yaml"))
	if os.IsNotExist(err) {
		return nil
	}

	if err != nil {
		return err
	}

	meta, err := images.ParseMetadata(data)
	if err != nil {
		return fmt.Errorf("reading metadata of %q: %w", inst.Name, err)
	}

	ids, err := ru.host.idsOf(inst)
	if err != nil {
		return err
	}

	tctx := images.TemplateContext{
		Name:         project.Name(inst.Name), // the hostname: never the key
		Architecture: inst.Architecture,
		Ephemeral:    inst.Ephemeral,
		Config:       config,
		Devices:      devices,
	}

	triggers := []string{"start"}
	if pending != "" {
		triggers = []string{pending, "start"}
	}

	for _, t := range triggers {
		err := images.RenderTemplates(rootfs, metaDir, meta, t, tctx, ids.HostUID, ids.HostGID)
		if err != nil {
			return fmt.Errorf("rendering %s templates of %q: %w", t, inst.Name, err)
		}
	}

	return nil
}

func envFromConfig(config map[string]string) map[string]string {
	env := map[string]string{}
	for k, v := range config {
		if strings.HasPrefix(k, "environment.") {
			env[strings.TrimPrefix(k, "environment.")] = v
		}
	}

	return env
}
