package projects

import (
	"net/http"
	"path/filepath"
	"sort"
	"strings"

	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/validate"
)

// restriction is the value of a restricted.* key in a restricted project, LXD's default
// when unset.
func restriction(cfg map[string]string, key string) string {
	v := cfg[key]
	if v != "" {
		return v
	}

	switch key {
	case "restricted.devices.disk", "restricted.devices.nic":
		return "managed"
	case "restricted.containers.privilege":
		return "unprivileged"
	}

	return "block"
}

// CheckRestrictions refuses (403, naming the key) an instance whose expanded config or
// devices a restricted project does not allow. An unrestricted project allows all.
// Berth itself refuses privileged containers and raw.idmap anywhere, so
// restricted.containers.privilege and restricted.idmap.* have nothing more to refuse.
func CheckRestrictions(proj string, cfg map[string]string, config map[string]string, devices map[string]map[string]string) error {
	if !validate.IsTrue(cfg["restricted"]) {
		return nil
	}

	deny := func(key, what string) error {
		return api.StatusErrorf(http.StatusForbidden, "project %q is restricted (%s=%s): %s", proj, key, restriction(cfg, key), what)
	}

	if validate.IsTrue(config["security.nesting"]) && restriction(cfg, "restricted.containers.nesting") != "allow" {
		return deny("restricted.containers.nesting", "security.nesting is not allowed")
	}

	if restriction(cfg, "restricted.containers.lowlevel") != "allow" {
		for _, k := range sortedKeys(config) {
			if lowLevel(k, config[k]) {
				return deny("restricted.containers.lowlevel", "low-level option "+k+" is not allowed")
			}
		}
	}

	for _, name := range sortedKeys(devices) {
		d := devices[name]
		err := checkDevice(cfg, name, d, deny)
		if err != nil {
			return err
		}
	}

	return nil
}

func checkDevice(cfg map[string]string, name string, d map[string]string, deny func(key, what string) error) error {
	typ := d["type"]
	switch typ {
	case "none":
		return nil
	case "disk":
		return checkDisk(cfg, name, d, deny)
	case "nic":
		key := "restricted.devices.nic"
		switch restriction(cfg, key) {
		case "allow":
			return nil
		case "managed":
			if d["network"] != "" {
				return nil
			}

			return deny(key, "device "+quote(name)+": only NICs on a managed network (network=) are allowed")
		}

		return deny(key, "device "+quote(name)+": NICs are not allowed")
	case "unix-char", "unix-block", "proxy":
		key := "restricted.devices." + typ
		if restriction(cfg, key) == "allow" {
			return nil
		}

		return deny(key, "device "+quote(name)+" of type "+typ+" is not allowed")
	}

	// Types Berth does not serve are refused by instance validation; a restricted
	// project refuses them here too, whatever they are.
	return deny("restricted.devices."+typ, "device "+quote(name)+" of type "+typ+" is not allowed")
}

// checkDisk: "managed" (LXD's default) allows only disks from a storage pool (the root
// disk, custom volumes); "allow" also host paths under restricted.devices.disk.paths (any
// path when that is empty); "block" only the root disk.
func checkDisk(cfg map[string]string, name string, d map[string]string, deny func(key, what string) error) error {
	key := "restricted.devices.disk"
	if d["path"] == "/" { // the root disk (device.IsRoot): always from the pool
		return nil
	}

	fromPool := d["pool"] != ""
	switch restriction(cfg, key) {
	case "block":
		return deny(key, "device "+quote(name)+": only the root disk is allowed")
	case "managed":
		if fromPool {
			return nil
		}

		return deny(key, "device "+quote(name)+": host paths are not allowed, only storage volumes")
	}

	if fromPool {
		return nil
	}

	paths := cfg["restricted.devices.disk.paths"]
	if strings.TrimSpace(paths) == "" {
		return nil
	}

	src := filepath.Clean(d["source"])
	for _, p := range strings.Split(paths, ",") {
		p = filepath.Clean(strings.TrimSpace(p))
		if p == "" || !filepath.IsAbs(p) {
			continue
		}

		if src == p || strings.HasPrefix(src, strings.TrimSuffix(p, "/")+"/") {
			return nil
		}
	}

	return deny("restricted.devices.disk.paths", "device "+quote(name)+": source "+quote(d["source"])+" is outside the allowed paths")
}

// lowLevel reports whether an instance key loosens the confinement a restricted project
// relies on: raw.* and the seccomp keys that let more system calls through (more denials
// are allowed).
func lowLevel(k, v string) bool {
	switch {
	case strings.HasPrefix(k, "raw."):
		return true
	case k == "security.syscalls.deny_default":
		return v != "" && !validate.IsTrue(v)
	case k == "security.syscalls.allow":
		return v != ""
	}

	return false
}

func quote(s string) string { return "\"" + s + "\"" }

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}

	sort.Strings(out)
	return out
}
