package instance

import (
	"fmt"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/lxd/confine"
	"github.com/berth-dev/berth/lxd/device"
	"github.com/berth-dev/berth/lxd/snapshot"
	"github.com/berth-dev/berth/lxd/sys"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/units"
	"github.com/berth-dev/berth/shared/validate"
)

// keyValidators lists the instance config keys Berth understands. A key that is neither here
// nor under an open namespace (user.*, environment.*, image.*, volatile.*) is refused, so a
// typo never silently does nothing.
var keyValidators = map[string]func(string) error{
	"boot.autostart":             validate.Bool,
	"boot.autostart.priority":    isInt64, // LXD's three: any 64-bit integer, bounded where used
	"boot.autostart.delay":       isInt64,
	"boot.host_shutdown_timeout": isInt64, // a clean stop's budget in an evacuation
	"limits.memory":              isMemory,
	"limits.cpu":                 isCPU,
	"limits.cpu.allowance":       isAllowance,
	"limits.processes":           isPositiveInt,
	"security.idmap.isolated":    validate.Bool,
	"security.nesting":           validate.Bool,
	"security.privileged":        isFalse,
	confine.KeyDenyDefault:       validate.Bool,
	confine.KeyDenyCompat:        validate.Bool,
	confine.KeyDeny:              confine.ValidateNames,
	confine.KeyAllow:             confine.ValidateNames,
	"raw.idmap":                  isRawIdmap,
	"snapshots.expiry":           snapshot.CheckExpiry,
}

var openNamespaces = []string{"user.", "environment.", "image.", "volatile."}

// ValidateConfig checks every key and value of an instance's local config.
// It returns a 400 StatusError naming the first bad key.
func ValidateConfig(config map[string]string) error {
	for k, v := range config {
		err := validateKey(k, v)
		if err != nil {
			return api.StatusErrorf(http.StatusBadRequest, "invalid config %q: %v", k, err)
		}
	}

	return nil
}

func validateKey(k, v string) error {
	if strings.ContainsAny(v, "\x00") {
		return fmt.Errorf("value contains a NUL byte")
	}

	if strings.ContainsFunc(k, func(r rune) bool { return r <= ' ' || r == '=' || r == 0x7f }) {
		return fmt.Errorf("the key contains a space, a control character or \"=\"")
	}

	f, ok := keyValidators[k]
	if ok {
		return f(v)
	}

	for _, ns := range openNamespaces {
		if strings.HasPrefix(k, ns) && len(k) > len(ns) {
			if ns == "environment." && strings.ContainsAny(v, "\n\r") {
				return fmt.Errorf("environment value contains a line break")
			}

			return nil
		}
	}

	return fmt.Errorf("unknown key")
}

var rawIdmapRe = regexp.MustCompile(`^(uid|gid|both) [0-9]+(-[0-9]+)? [0-9]+(-[0-9]+)?$`)

// isRawIdmap checks LXD's syntax ("uid 1000 1000", "both 1000-1999 1000-1999", one entry a
// line) and then refuses: each container has one contiguous id range here, and mapping
// extra host ids into it would need the user namespace, the idmapped root and the disk
// devices to carry a split map. Refusing beats accepting a key that does nothing.
func isRawIdmap(v string) error {
	for _, line := range strings.Split(strings.TrimSpace(v), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && !rawIdmapRe.MatchString(line) {
			return fmt.Errorf("%q is not an id map entry like \"both 1000 1000\"", line)
		}
	}

	if strings.TrimSpace(v) != "" {
		return fmt.Errorf("raw.idmap is not supported: each container gets one contiguous id range (security.idmap.isolated is always on)")
	}

	return nil
}

func isFalse(v string) error {
	if validate.IsTrue(v) {
		return fmt.Errorf("privileged containers are not supported")
	}

	return validate.Bool(v)
}

func isPositiveInt(v string) error {
	if v == "" {
		return nil
	}

	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 {
		return fmt.Errorf("%q is not a positive integer", v)
	}

	return nil
}

// isInt64 accepts an integer of 64 bits, as LXD validates its boot.* numbers: an instance
// moved or imported from LXD keeps them. Their users bound them (SecondsConfig).
func isInt64(v string) error {
	if v == "" {
		return nil
	}

	_, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return fmt.Errorf("%q is not an integer", v)
	}

	return nil
}

// maxConfigWait bounds what a config key of seconds makes the daemon wait: more would hold
// up what comes after (every later autostart, the rest of an evacuation) for hours.
const maxConfigWait = time.Hour

// HostShutdownTimeout is boot.host_shutdown_timeout, LXD's budget for a clean stop when
// the host stops an instance (at most an hour); nil when unset, unusable or negative.
func HostShutdownTimeout(config map[string]string) *time.Duration {
	n, err := strconv.ParseInt(config["boot.host_shutdown_timeout"], 10, 64)
	if err != nil || n < 0 {
		return nil
	}

	d := boundedSeconds(n)
	return &d
}

// SecondsConfig reads config[key] as seconds, bounded to [0, maxConfigWait]; ok is false
// when the key is unset or not a number.
func SecondsConfig(config map[string]string, key string) (d time.Duration, ok bool) {
	n, err := strconv.ParseInt(config[key], 10, 64)
	if err != nil {
		return 0, false
	}

	return boundedSeconds(n), true
}

// boundedSeconds is n seconds within [0, maxConfigWait] (bounded before the product, which
// could overflow).
func boundedSeconds(n int64) time.Duration {
	return time.Duration(min(max(n, 0), int64(maxConfigWait/time.Second))) * time.Second
}

func isCPU(v string) error {
	if v == "" {
		return nil
	}

	n, err := strconv.Atoi(v)
	if err == nil {
		if n <= 0 {
			return fmt.Errorf("cpu count must be positive")
		}

		return nil
	}

	if !sys.CPUListRe.MatchString(v) {
		return fmt.Errorf("%q is neither a cpu count nor a cpu set like 0-1,3", v)
	}

	return nil
}

var allowanceRe = regexp.MustCompile(`^([0-9]+%|[0-9]+ms/[0-9]+ms)$`)

func isAllowance(v string) error {
	if v == "" || allowanceRe.MatchString(v) {
		return nil
	}

	return fmt.Errorf("%q is not a percentage or a time slice like 25ms/100ms", v)
}

func isMemory(v string) error {
	if v == "" {
		return nil
	}

	if strings.HasSuffix(v, "%") {
		return isPositiveInt(strings.TrimSuffix(v, "%"))
	}

	_, err := ParseBytes(v)
	return err
}

// ParseBytes parses LXD-style sizes: "512MiB", "1GB", "1048576" (shared/units: projects
// read their limits the same way).
func ParseBytes(v string) (int64, error) {
	return units.ParseBytes(v)
}

// ValidateDevices checks the shape of a device map: every device has a known type.
func ValidateDevices(devices map[string]map[string]string) error {
	for name, d := range devices {
		if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\n\r\x00") {
			return api.StatusErrorf(http.StatusBadRequest, "invalid device name %q", name)
		}

		switch d["type"] {
		case "disk", "nic", "proxy", "unix-char", "unix-block", "none":
			err := device.Validate(d)
			if err == nil && d["type"] == "disk" && device.IsRoot(d) {
				err = validateRootSize(d)
			}

			if err != nil {
				return api.StatusErrorf(http.StatusBadRequest, "device %q: %v", name, err)
			}
		case "":
			return api.StatusErrorf(http.StatusBadRequest, "device %q has no type", name)
		default:
			return api.StatusErrorf(http.StatusBadRequest, "device %q has unknown type %q", name, d["type"])
		}

		for k, v := range d {
			if strings.ContainsAny(k+v, "\n\r\x00") {
				return api.StatusErrorf(http.StatusBadRequest, "device %q: %q contains a line break or NUL", name, k)
			}
		}
	}

	return nil
}

// ValidateRequestVolatile refuses volatile keys in a create request: they are the daemon's
// record of the instance (its id map, its host interfaces, which the daemon deletes by
// name at stop), except a NIC's MAC address, which LXD clients may set.
func ValidateRequestVolatile(config map[string]string) error {
	for k := range config {
		if strings.HasPrefix(k, "volatile.") && !strings.HasSuffix(k, ".hwaddr") {
			return api.StatusErrorf(http.StatusBadRequest, "invalid config %q: volatile keys are set by berthd", k)
		}
	}

	return nil
}
