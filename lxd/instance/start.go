package instance

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-dev/berth/lxd/container"
	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/lxd/images"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/revert"
)

// Start boots an instance: mount its root, render pending templates, hand it to a monitor.
func (m *Manager) Start(ctx context.Context, name string) error {
	unlock := m.lock(name)
	defer unlock()

	return m.start(ctx, name)
}

// Preconditions: the instance lock is held.
func (m *Manager) start(ctx context.Context, name string) error {
	if m.monitor(name) != nil {
		return api.StatusErrorf(http.StatusBadRequest, "the instance is already running")
	}

	l, err := m.loadExpanded(ctx, name)
	if err != nil {
		return err
	}

	inst, ids, config, devices := l.inst, l.ids, l.config, l.devices

	// The limit lives in the pool; setting it again at each start follows changes made
	// while it could not be applied (a restored snapshot's devices).
	err = m.applyRootSize(name, devices)
	if err != nil {
		return err
	}

	seccomp, err := seccompOf(config)
	if err != nil {
		return err
	}

	r := revert.New()
	defer r.Fail()

	rootfs, err := m.cfg.Pool.MountInstance(name, ids)
	if err != nil {
		return fmt.Errorf("mounting root of %q: %w", name, err)
	}

	r.Add(func() { _ = m.cfg.Pool.UnmountInstance(name) })

	trigger := inst.Config["volatile.apply_template"]
	err = m.renderTemplates(inst, rootfs, trigger, config, devices)
	if err != nil {
		return err
	}

	limits, err := m.limitsOf(name, config)
	if err != nil {
		return err
	}

	devs, err := m.devices.Prepare(ctx, m.deviceInstance(inst, ids, rootfs), devices)
	if err != nil {
		return err
	}

	// Staged devices stay while the container runs: an in-place reboot binds them
	// again. The monitor unmounts them when it stops for good.
	r.Add(devs.Undo)

	spec := container.Spec{
		Name:     name,
		UUID:     inst.Config["volatile.uuid"],
		Rootfs:   rootfs,
		IDMap:    ids,
		RunDir:   m.runDir(name),
		Env:      envFromConfig(config),
		Unmounts: m.unmountsFor(name, devs.Unmounts()),
		Limits:   limits,
		Mounts:   specMounts(devs.Mounts()),
		Seccomp:  seccomp,

		CgroupParent: m.cfg.CgroupParent,
	}

	mon, err := container.Start(ctx, m.cfg.Exe, spec, m.log.With("instance", name))
	if err != nil {
		return fmt.Errorf("starting %q: %w", name, err)
	}

	err = devs.Started(ctx, mon.InitPID())
	if err == nil {
		err = mon.WaitBoot(ctx) // an init that dies of the host fails the start, with why
	}

	if err != nil {
		err = mon.BootFailure(err)
		_, _ = mon.Stop(ctx, 0, true)
		_ = mon.Close()
		m.devices.Stopped(name, m.instanceDir(name)) // filters of NICs attached before init died
		return err
	}

	r.Success()
	m.followOnce(name, mon)

	m.mu.Lock()
	m.monitors[name] = mon
	m.mu.Unlock()
	go m.watch(name, mon)

	now := time.Now().UTC()
	err = m.cfg.DB.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		err := tx.UpdateInstanceConfig(ctx, name, map[string]string{"volatile.last_state.power": "RUNNING"}, []string{"volatile.apply_template"})
		if err != nil {
			return err
		}

		return tx.UpdateInstanceLastUsed(ctx, name, now)
	})
	if err != nil {
		m.log.Warn("recording start", "instance", name, "err", err)
	}

	m.event("instance-started", name, nil)
	return nil
}

// renderTemplates renders a pending create/copy/rename trigger, then the start trigger.
func (m *Manager) renderTemplates(inst *db.Instance, rootfs, pending string, config map[string]string, devices map[string]map[string]string) error {
	metaDir := m.instanceDir(inst.Name)
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

	ids, err := m.idsOf(inst)
	if err != nil {
		return err
	}

	tctx := images.TemplateContext{
		Name:         inst.Name,
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

// expanded is an instance read for work on it: its row, its id map, and its config and
// devices expanded from its profiles.
type expanded struct {
	inst    *db.Instance
	ids     idmap.Set
	config  map[string]string
	devices map[string]map[string]string
}

func (m *Manager) loadExpanded(ctx context.Context, name string) (*expanded, error) {
	inst, profiles, err := m.load(ctx, name)
	if err != nil {
		return nil, err
	}

	ids, err := m.idsOf(inst)
	if err != nil {
		return nil, err
	}

	config, devices := Expand(inst, profiles)

	return &expanded{inst: inst, ids: ids, config: config, devices: devices}, nil
}

// load reads an instance and the profiles it uses in one read transaction.
func (m *Manager) load(ctx context.Context, name string) (*db.Instance, map[string]*db.Profile, error) {
	var inst *db.Instance
	profiles := map[string]*db.Profile{}
	err := m.cfg.DB.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		inst, err = tx.GetInstance(ctx, name)
		if err != nil {
			return err
		}

		for _, p := range inst.Profiles {
			profiles[p], err = tx.GetProfile(ctx, p)
			if err != nil {
				return err
			}
		}

		return nil
	})

	return inst, profiles, err
}
