package device

import (
	"context"
	"fmt"
	"net/http"

	"github.com/berth-dev/berth/lxd/network"
	"github.com/berth-dev/berth/shared/api"
)

// hotplugNICs brings a running container's NICs from old to new devices: a removed or
// changed NIC loses its veth pair (deleting the host end takes the one inside with it),
// its port filter and its address; the added or changed ones are prepared and attached
// together, inside the running network namespace of init pid.
func (h *Host) hotplugNICs(ctx context.Context, in *Instance, pid int, old, new map[string]map[string]string) error {
	removed, added := changes(onlyNICs(old), onlyNICs(new))
	if len(removed) == 0 && len(added) == 0 {
		return nil
	}

	// ACLs that do not exist are refused before a changed NIC loses its link.
	for _, dev := range added {
		err := checkNICACLs(h.Networks, dev, new[dev])
		if err != nil {
			return err
		}
	}

	// The host ends are recorded as volatile keys as NICs attach: read the latest.
	cur, err := h.Records.Volatile(ctx, in.Name)
	if err != nil {
		return err
	}

	unset := []string{}

	for _, dev := range removed {
		r := h.run(in, dev, old[dev], pid)
		r.local = cur
		err := nicDevice{}.detach(r)
		if err != nil {
			return fmt.Errorf("removing NIC %s: %w", dev, err)
		}

		if cur[hostNameKey(dev)] != "" {
			unset = append(unset, hostNameKey(dev))
		}

		if _, kept := new[dev]; !kept {
			unset = append(unset, hwaddrKey(dev)) // a NIC added again is a new card
		}
	}

	if len(unset) > 0 {
		err := h.Records.SetVolatile(ctx, in.Name, nil, unset)
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

	runs, err := h.prepareNICs(ctx, in, attach)
	if err != nil {
		return err
	}

	return h.attachNICs(ctx, in, pid, runs)
}

// checkNICACLs refuses a NIC naming ACLs that are malformed or do not exist (400).
func checkNICACLs(nets *network.Manager, dev string, conf map[string]string) error {
	acl, err := network.NICACL(conf)
	if err != nil {
		return api.StatusErrorf(http.StatusBadRequest, "device %s: %v", dev, err)
	}

	if nets == nil || len(acl.Names) == 0 {
		return nil
	}

	err = nets.CheckACLs(acl.Names)
	if err != nil {
		return fmt.Errorf("device %s: %w", dev, err)
	}

	return nil
}

func isNIC(conf map[string]string) bool { return conf["type"] == "nic" }

func onlyNICs(devices map[string]map[string]string) map[string]map[string]string {
	out := map[string]map[string]string{}
	for name, d := range devices {
		if isNIC(d) {
			out[name] = d
		}
	}

	return out
}

func withoutNICs(devices map[string]map[string]string) map[string]map[string]string {
	out := map[string]map[string]string{}
	for name, d := range devices {
		if !isNIC(d) {
			out[name] = d
		}
	}

	return out
}
