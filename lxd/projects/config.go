package projects

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/units"
	"github.com/berth-dev/berth/shared/validate"
)

// Feature flags. A project without a feature uses the default project's objects of that
// kind. Networks are off as in LXD 5.0 (a project without features.networks may only use
// the default project's networks); features.images, features.profiles and
// features.storage.volumes are on by default in a new project as in LXD 5.0.
var features = map[string]bool{ // key -> whether Berth can turn it on
	"features.images":          true,
	"features.profiles":        true,
	"features.storage.volumes": true,
	"features.networks":        false,
}

// Limit keys: how much a project's instances may use in all.
const (
	LimitInstances  = "limits.instances"
	LimitContainers = "limits.containers"
	LimitCPU        = "limits.cpu"
	LimitMemory     = "limits.memory"
	LimitDisk       = "limits.disk"
	LimitProcesses  = "limits.processes"
)

// restrictedBools are LXD's restricted.* keys that take allow/block (and the two that
// take more values, checked below).
var restrictedKeys = map[string][]string{
	"restricted.containers.nesting":   {"block", "allow"},
	"restricted.containers.lowlevel":  {"block", "allow"},
	"restricted.containers.privilege": {"unprivileged", "isolated", "allow"},
	"restricted.devices.disk":         {"managed", "allow", "block"},
	"restricted.devices.nic":          {"managed", "allow", "block"},
	"restricted.devices.unix-char":    {"block", "allow"},
	"restricted.devices.unix-block":   {"block", "allow"},
	"restricted.devices.unix-hotplug": {"block", "allow"},
	"restricted.devices.proxy":        {"block", "allow"},
	"restricted.devices.gpu":          {"block", "allow"},
	"restricted.devices.usb":          {"block", "allow"},
	"restricted.devices.pci":          {"block", "allow"},
	"restricted.devices.infiniband":   {"block", "allow"},
	"restricted.idmap.uid":            nil, // a list of ids and ranges
	"restricted.idmap.gid":            nil,
	"restricted.devices.disk.paths":   nil, // a list of absolute host paths
	"restricted.snapshots":            {"block", "allow"},
	"restricted.backups":              {"block", "allow"},
	"restricted.networks.uplinks":     nil,
	"restricted.networks.subnets":     nil,
	"restricted.networks.zones":       nil,
}

// maxConfigKeys and maxValueLen bound a project's config.
const (
	maxConfigKeys = 256
	maxValueLen   = 4096
)

// newProjectOn are the features a new project gets unless its config says otherwise.
var newProjectOn = map[string]bool{"features.profiles": true, "features.images": true, featureVolumes: true}

// withNewDefaults fills the feature flags a new project's config leaves out.
func withNewDefaults(cfg map[string]string) map[string]string {
	return withFeatures(cfg, func(k string) bool { return newProjectOn[k] })
}

// withDefaults fills the feature flags a config leaves out: on in the default project
// (it owns everything), off elsewhere (an existing project's PUT without them turns
// them off, as in LXD).
func withDefaults(cfg map[string]string, isDefault bool) map[string]string {
	return withFeatures(cfg, func(string) bool { return isDefault })
}

// withFeatures is cfg with each feature flag it leaves out set to on(flag).
func withFeatures(cfg map[string]string, on func(string) bool) map[string]string {
	out := make(map[string]string, len(cfg)+len(features))
	for k, v := range cfg {
		out[k] = v
	}

	for k := range features {
		_, ok := out[k]
		if !ok {
			out[k] = strconv.FormatBool(on(k))
		}
	}

	return out
}

// ValidateConfig checks a project's config: every key known, every value of its type; a
// 400 naming the key otherwise. isDefault is the default project, whose features are
// fixed (it owns everything).
func ValidateConfig(cfg map[string]string, isDefault bool) error {
	if len(cfg) > maxConfigKeys {
		return api.StatusErrorf(http.StatusBadRequest, "project config has %d keys, more than %d", len(cfg), maxConfigKeys)
	}

	for k, v := range cfg {
		if len(v) > maxValueLen {
			return api.StatusErrorf(http.StatusBadRequest, "project config key %q: value is longer than %d bytes", k, maxValueLen)
		}

		err := validateKey(k, v, isDefault)
		if err != nil {
			return api.StatusErrorf(http.StatusBadRequest, "project config key %q: %v", k, err)
		}
	}

	return nil
}

func validateKey(k, v string, isDefault bool) error {
	if strings.HasPrefix(k, "user.") {
		return nil
	}

	if canEnable, ok := features[k]; ok {
		err := validate.Bool(v)
		if err != nil {
			return err
		}

		if isDefault {
			if !validate.IsTrue(v) {
				return fmt.Errorf("the default project's features cannot be turned off")
			}

			return nil
		}

		if validate.IsTrue(v) && !canEnable {
			return fmt.Errorf("not supported yet: a Berth project shares this with the default project")
		}

		return nil
	}

	switch k {
	case LimitInstances, LimitContainers, LimitCPU, LimitProcesses:
		_, err := parseCount(v)
		return err
	case LimitMemory, LimitDisk:
		_, err := parseBytes(v)
		return err
	case "limits.virtual-machines":
		n, err := parseCount(v)
		if err == nil && n != 0 {
			return fmt.Errorf("Berth runs no virtual machines: only 0 is meaningful")
		}

		return err
	case "restricted":
		return validate.Bool(v)
	case "description":
		return fmt.Errorf("description is a field, not a config key")
	}

	allowed, ok := restrictedKeys[k]
	if !ok {
		return fmt.Errorf("unknown key")
	}

	if allowed == nil {
		return nil // lists, checked when used
	}

	for _, a := range allowed {
		if v == a {
			return nil
		}
	}

	return fmt.Errorf("%q is not one of %s", v, strings.Join(allowed, ", "))
}

// parseCount reads a non-negative whole number (an empty value is no limit: -1).
func parseCount(v string) (int64, error) {
	if v == "" {
		return -1, nil
	}

	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a non-negative whole number", v)
	}

	return n, nil
}

// parseBytes reads a size such as "2GiB" (an empty value is no limit: -1).
func parseBytes(v string) (int64, error) {
	if v == "" {
		return -1, nil
	}

	n, err := units.ParseBytes(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size", v)
	}

	return n, nil
}
