package instance

import (
	"context"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/projects"
	"github.com/berth-dev/berth/shared/project"
)

// An instance's row name is its key (shared/project): every host-side name (storage,
// cgroup, run directory, monitor socket, veths, lxcfs) derives from the key, so two
// projects' instances of one name never share one. Its project's limits and
// restrictions are checked (checkProject) in the transaction that writes a new row and
// before a config change is written.

// ProjectUsage lists what each instance of proj takes against its limits (projects.Usage).
func ProjectUsage(ctx context.Context, tx *db.Tx, proj string) ([]projects.Use, error) {
	profiles, err := profileMap(ctx, tx)
	if err != nil {
		return nil, err
	}

	return projectUsage(ctx, tx, proj, profiles)
}

func projectUsage(ctx context.Context, tx *db.Tx, proj string, profiles map[string]*db.Profile) ([]projects.Use, error) {
	rows, err := tx.GetInstances(ctx)
	if err != nil {
		return nil, err
	}

	uses := []projects.Use{}
	for i := range rows {
		if project.Of(rows[i].Name) == proj {
			uses = append(uses, useOf(&rows[i], profiles))
		}
	}

	vols, err := VolumeUsage(ctx, tx, proj)
	if err != nil {
		return nil, err
	}

	return append(uses, vols...), nil
}

// VolumeUsage lists the custom volumes project proj owns, each a use of limits.disk by
// its size (-1 without one).
func VolumeUsage(ctx context.Context, tx *db.Tx, proj string) ([]projects.Use, error) {
	vols, err := tx.GetStorageVolumes(ctx, nil)
	if err != nil {
		return nil, err
	}

	uses := []projects.Use{}
	for _, v := range vols {
		if project.VolumeProject(v.Name) == proj {
			uses = append(uses, VolumeUse(v.Pool, v.Name, v.Config))
		}
	}

	return uses, nil
}

// VolumeUse is what a custom volume with config takes against its project's limits.
func VolumeUse(pool, key string, config map[string]string) projects.Use {
	size := int64(-1)
	if n, err := ParseBytes(config["size"]); err == nil && config["size"] != "" {
		size = n
	}

	return projects.Use{Name: pool + "/" + project.VolumeName(key), RootSize: size, Volume: true}
}

// CheckVolume checks a custom volume's new config (a new volume, or a changed size)
// against the limits of the project that owns it: 400 naming limits.disk when the
// project's root disks and volumes would exceed it, or the volume sets no size there.
func CheckVolume(ctx context.Context, tx *db.Tx, pool, key string, config map[string]string) error {
	proj := project.VolumeProject(key)
	p, err := tx.GetProject(ctx, proj)
	if err != nil {
		return err
	}

	if p.Config[projects.LimitDisk] == "" {
		return nil
	}

	uses, err := ProjectUsage(ctx, tx, proj)
	if err != nil {
		return err
	}

	mine := VolumeUse(pool, key, config)
	replaced := false
	for i := range uses {
		if uses[i].Volume && uses[i].Name == mine.Name {
			uses[i], replaced = mine, true
		}
	}

	if !replaced {
		uses = append(uses, mine)
	}

	return projects.Check(proj, p.Config, uses)
}

func profileMap(ctx context.Context, tx *db.Tx) (map[string]*db.Profile, error) {
	ps, err := tx.GetProfiles(ctx)
	if err != nil {
		return nil, err
	}

	out := make(map[string]*db.Profile, len(ps))
	for i := range ps {
		out[ps[i].Name] = &ps[i]
	}

	return out, nil
}

func useOf(inst *db.Instance, profiles map[string]*db.Profile) projects.Use {
	config, devices := Expand(inst, profiles)
	size := int64(-1)
	s := rootDiskSize(devices)
	if s != "" {
		n, err := ParseBytes(s)
		if err == nil {
			size = n
		}
	}

	return projects.Use{Name: project.Name(inst.Name), Config: config, RootSize: size}
}

// checkProject checks next (a new row, or an instance's new state) against its
// project: the project exists (404 naming it), its restrictions allow next's expanded
// config and devices (403 naming the key), and its limits hold with next in place of
// the instance's current state (400 naming the limit and the use).
func checkProject(ctx context.Context, tx *db.Tx, next *db.Instance) error {
	profiles, err := profileMap(ctx, tx)
	if err != nil {
		return err
	}

	return checkProjectWith(ctx, tx, next, profiles)
}

// checkProjectWith is checkProject with the profiles given (a profile's change checked
// before it is written).
func checkProjectWith(ctx context.Context, tx *db.Tx, next *db.Instance, profiles map[string]*db.Profile) error {
	proj := project.Of(next.Name)
	p, err := tx.GetProject(ctx, proj)
	if err != nil {
		return err
	}

	config, devices := Expand(next, profiles)
	err = projects.CheckRestrictions(proj, p.Config, config, devices)
	if err != nil {
		return err
	}

	if !hasLimits(p.Config) {
		return nil
	}

	uses, err := projectUsage(ctx, tx, proj, profiles)
	if err != nil {
		return err
	}

	mine := useOf(next, profiles)
	replaced := false
	for i := range uses {
		if uses[i].Name == mine.Name {
			uses[i], replaced = mine, true
		}
	}

	if !replaced {
		uses = append(uses, mine)
	}

	return projects.Check(proj, p.Config, uses)
}

func hasLimits(cfg map[string]string) bool {
	for _, k := range []string{projects.LimitInstances, projects.LimitContainers, projects.LimitCPU,
		projects.LimitMemory, projects.LimitDisk, projects.LimitProcesses} {
		if cfg[k] != "" {
			return true
		}
	}

	return false
}
