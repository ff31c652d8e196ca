package instance

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/lxd/container"
	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/idmap"
)

// hotplugNICs brings a running container's NICs from old to new devices: a removed or
// changed NIC loses its veth pair (deleting the host end takes the one inside with it),
// its port filter and its address; an added or changed one is attached as at start,
// inside the running network namespace. Like LXD, the container sees a new interface;
// a DHCP client inside configures it as it would a hotplugged card.
func (m *Manager) hotplugNICs(ctx context.Context, inst *db.Instance, mon *container.Monitor, ids idmap.Set, old, new map[string]map[string]string) error {
	removed, added := deviceChanges(onlyNICs(old), onlyNICs(new))
	if len(removed) == 0 && len(added) == 0 {
		return nil
	}

	// The host ends are recorded as volatile keys as NICs attach: read the latest.
	cur, _, err := m.load(ctx, inst.Name)
	if err != nil {
		return err
	}

	unset := []string{}

	for _, dev := range removed {
		key := "volatile." + dev + ".host_name"

		host := cur.Config[key]
		if host != "" {
			err := m.dropHostEnd(host)
			if err != nil {
				return fmt.Errorf("removing NIC %s: %w", dev, err)
			}

			unset = append(unset, key)
		}

		m.releaseNIC(inst.Name, dev)

		if _, kept := new[dev]; !kept {
			unset = append(unset, "volatile."+dev+".hwaddr") // a NIC added again is a new card
		}
	}

	if len(unset) > 0 {
		err := m.cfg.DB.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
			return tx.UpdateInstanceConfig(ctx, inst.Name, nil, unset)
		})
		if err != nil {
			return err
		}
	}

	if len(added) == 0 {
		return nil
	}

	attach := map[string]map[string]string{}
	for _, dev := range added {
		attach[dev] = new[dev]
	}

	nics, err := m.nicsPrepare(ctx, inst, attach, "", ids)
	if err != nil {
		return err
	}

	return m.nicsAttach(ctx, inst.Name, mon, nics)
}

// releaseNIC forgets the address of one NIC on every network.
func (m *Manager) releaseNIC(name, dev string) {
	if m.cfg.Networks == nil {
		return
	}

	for _, nw := range m.cfg.Networks.Names() {
		n, err := m.cfg.Networks.Get(nw)
		if err == nil {
			_ = n.Release(name + "." + dev)
		}
	}
}

func onlyNICs(devices map[string]map[string]string) map[string]map[string]string {
	out := map[string]map[string]string{}
	for name, d := range devices {
		if d["type"] == "nic" {
			out[name] = d
		}
	}

	return out
}

func withoutNICs(devices map[string]map[string]string) map[string]map[string]string {
	out := map[string]map[string]string{}
	for name, d := range devices {
		if d["type"] != "nic" {
			out[name] = d
		}
	}

	return out
}
