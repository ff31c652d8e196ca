package backup

import (
	"context"
	"maps"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/images"
	"github.com/berth-dev/berth/lxd/instance"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
	"github.com/berth-dev/berth/shared/validate"
)

// Import creates an instance from a backup tarball (see Export) and returns its name:
// name if set, else the one in the backup. It is made on the pool its root disk names, or
// on pool when set (lxc import --storage), which its and its snapshots' root disks then
// name. The backup is hostile. It is split, member by
// member, into one image-layout tarball per tree (the instance and each snapshot): names
// are checked (tarsafe: a leading "/" dropped, no "..", no NUL), only members under the
// expected prefixes are kept, and a hard link must stay inside its own tree. Each tree is
// then unpacked by the image unpacker (parents resolved inside the tree with openat2, no
// device nodes), as a pool image the instance sits on, with a fresh id range.
func (s *Service) Import(ctx context.Context, file, name, pool string) (string, error) {
	err := os.MkdirAll(s.Dir(), 0o700)
	if err != nil {
		return "", err
	}

	tmp, err := os.MkdirTemp(s.Dir(), ".import-")
	if err != nil {
		return "", err
	}

	defer os.RemoveAll(tmp)

	index, trees, err := splitBackup(file, tmp)
	if err != nil {
		return "", api.StatusErrorf(http.StatusBadRequest, "reading backup: %v", err)
	}

	if name == "" {
		name = index.Name
	}

	err = validate.InstanceName(name)
	if err != nil {
		return "", api.StatusErrorf(http.StatusBadRequest, "invalid instance name: %v", err)
	}

	// The backup lands in the project of the request (shared/project keys its name).
	name, err = project.KeyFor(project.FromContext(ctx), name)
	if err != nil {
		return "", api.StatusErrorf(http.StatusBadRequest, "invalid instance name: %v", err)
	}

	c := index.Config.Container
	if c == nil {
		return "", api.StatusErrorf(http.StatusBadRequest, "backup has no instance config")
	}

	err = validateImported(index)
	if err != nil {
		return "", err
	}

	_, ok := trees[""]
	if !ok {
		return "", api.StatusErrorf(http.StatusBadRequest, "backup has no %s/rootfs", containerDir)
	}

	devices := c.Devices
	if pool != "" {
		devices = instance.WithRootPool(devices, pool)
	}

	// Snapshots the index lists without a tree in the backup are left out.
	var snaps []db.Snapshot
	for _, snap := range index.Config.Snapshots {
		if pool != "" {
			snap.Devices = instance.WithRootPool(snap.Devices, pool)
		}

		if _, ok := trees[snap.Name]; ok {
			snaps = append(snaps, db.Snapshot{
				Name: snap.Name, Architecture: snap.Architecture, Ephemeral: snap.Ephemeral,
				CreatedAt: snap.CreatedAt, ExpiresAt: snap.ExpiresAt, Devices: snap.Devices, Profiles: snap.Profiles,
				Config: importedConfig(snap.Config),
			})
		}
	}

	err = s.cfg.Instances.CreateFromTrees(ctx, instance.Incoming{
		Instance: db.Instance{
			Name: name, Architecture: c.Architecture, Description: c.Description, Ephemeral: c.Ephemeral,
			Config: importedConfig(c.Config), Devices: devices, Profiles: c.Profiles,
		},
		Snapshots: snaps,
		Identity:  instance.NewIdentity,
		Source:    "backup",
		Fill: func(ctx context.Context, tree, rootfsDir, metaDir string) error {
			stats, err := (&images.Unpacker{Log: s.log}).Unpack(trees[tree], rootfsDir, metaDir)
			if stats.SkippedDevices > 0 {
				s.log.Warn("backup carried device nodes; skipped", "instance", name, "tree", tree, "count", stats.SkippedDevices)
			}

			return err
		},
	})
	if err != nil {
		return "", err
	}

	return name, nil
}

// validateImported checks the config and devices a backup brings, the instance's and each
// snapshot's (a restore makes them the instance's), with the validators of a create
// request and their errors, before anything is created. Devices that reach the host are
// refused outright: a backup is hostile input, and a host path, device node, host socket
// or host interface it names is not the admin's choice. The admin adds them again after
// the import if they are wanted.
func validateImported(index *Index) error {
	c := index.Config.Container
	err := validateImportedOne("", c.Config, c.Devices)
	if err != nil {
		return err
	}

	for _, s := range index.Config.Snapshots {
		err := validateImportedOne(" snapshot "+strconv.Quote(s.Name), s.Config, s.Devices)
		if err != nil {
			return err
		}
	}

	return nil
}

func validateImportedOne(what string, config map[string]string, devices map[string]map[string]string) error {
	for _, name := range slices.Sorted(maps.Keys(devices)) {
		why := HostReaching(devices[name])
		if why != "" {
			return api.StatusErrorf(http.StatusBadRequest, "backup%s: device %q (%s) %s: refused in an imported backup; add it again after the import", what, name, devices[name]["type"], why)
		}
	}

	err := instance.ValidateDevices(devices)
	if err == nil {
		err = instance.ValidateConfig(importedConfig(config))
	}

	if err != nil {
		return api.StatusErrorf(http.StatusBadRequest, "backup%s: %v", what, err)
	}

	return nil
}

// HostReaching says why a device gives the container something of the host's, or "":
// such a device is refused when it comes from hostile input (a backup, the snapshots a
// migration source describes).
func HostReaching(d map[string]string) string {
	switch d["type"] {
	case "disk":
		if d["source"] != "" || d["path"] != "/" {
			return "shares a host path"
		}
	case "unix-char", "unix-block":
		return "gives a host device node"
	case "proxy":
		return "opens a host socket"
	case "nic":
		if d["parent"] != "" || d["nictype"] != "" && d["nictype"] != "bridged" {
			return "attaches to a host interface"
		}
	}

	return ""
}

// importedConfig keeps a backup's settings but none of its identity: volatile keys go,
// except the base image.
func importedConfig(in map[string]string) map[string]string {
	out := map[string]string{}
	for k, v := range in {
		if !strings.HasPrefix(k, "volatile.") || k == "volatile.base_image" {
			out[k] = v
		}
	}

	return out
}
