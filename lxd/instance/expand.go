package instance

import "github.com/berth-dev/berth/lxd/db"

// Expand merges profiles in order, then the instance's own keys on top (LXD semantics).
func Expand(inst *db.Instance, profiles map[string]*db.Profile) (map[string]string, map[string]map[string]string) {
	config := map[string]string{}
	devices := map[string]map[string]string{}

	for _, name := range inst.Profiles {
		p := profiles[name]
		if p == nil {
			continue
		}

		for k, v := range p.Config {
			config[k] = v
		}

		for k, d := range p.Devices {
			devices[k] = copyMap(d)
		}
	}

	for k, v := range inst.Config {
		config[k] = v
	}

	for k, d := range inst.Devices {
		devices[k] = copyMap(d)
	}

	return config, devices
}

func copyMap(m map[string]string) map[string]string {
	out := make(map[string]string, len(m))
	for k, v := range m {
		out[k] = v
	}

	return out
}
