package pools

import (
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/berth-dev/berth/lxd/instance"
	"github.com/berth-dev/berth/shared/api"
)

// Drivers are the pool drivers the API accepts, sorted.
var Drivers = []string{"btrfs", "dir", "overlay"}

// Loop-backed btrfs pools: LXD's default size is 5GiB; the bounds keep a typo from making
// a file of exabytes or one too small for mkfs.btrfs.
const (
	defaultLoopSize = 5 << 30
	minLoopSize     = 256 << 20
	maxLoopSize     = 16 << 40
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// ValidateName checks a pool name: it names a directory and appears in URLs.
func ValidateName(name string) error {
	if !nameRE.MatchString(name) || strings.Contains(name, "..") {
		return api.StatusErrorf(http.StatusBadRequest, "invalid storage pool name %q: 1 to 63 letters, digits, '_', '.' or '-', starting with a letter or digit", name)
	}

	return nil
}

// ValidateDriver checks a driver name.
func ValidateDriver(driver string) error {
	if !slices.Contains(Drivers, driver) {
		return api.StatusErrorf(http.StatusBadRequest, "unknown storage driver %q (have %s)", driver, strings.Join(Drivers, ", "))
	}

	return nil
}

// keys lists each driver's config keys with their checks; user.* keys are free-form.
var keys = map[string]map[string]func(string) error{
	"dir":     {"source": checkSource},
	"overlay": {"source": checkSource},
	"btrfs":   {"source": checkSource, "size": checkSize, "btrfs.mount_options": checkMountOptions},
}

// fixedKeys cannot change after creation: the pool's data and mount sit on them.
var fixedKeys = []string{"source", "size", "btrfs.mount_options"}

const (
	maxValueLen = 4096
	maxKeys     = 64
)

// ValidateConfig checks a pool's config for driver (known keys, each value well formed).
func ValidateConfig(driver string, config map[string]string) error {
	err := ValidateDriver(driver)
	if err != nil {
		return err
	}

	if len(config) > maxKeys {
		return api.StatusErrorf(http.StatusBadRequest, "too many config keys (%d, at most %d)", len(config), maxKeys)
	}

	for k, v := range config {
		if len(v) > maxValueLen {
			return api.StatusErrorf(http.StatusBadRequest, "config key %q: value longer than %d bytes", k, maxValueLen)
		}

		if strings.HasPrefix(k, "user.") {
			continue
		}

		check, ok := keys[driver][k]
		if !ok {
			return api.StatusErrorf(http.StatusBadRequest, "config key %q is not valid for %s pools", k, driver)
		}

		err := check(v)
		if err != nil {
			return api.StatusErrorf(http.StatusBadRequest, "config key %q: %w", k, err)
		}
	}

	return nil
}

// ValidateUpdate checks a new config against the current one: valid for the driver and
// no fixed key changed.
func ValidateUpdate(driver string, cur, next map[string]string) error {
	err := ValidateConfig(driver, next)
	if err != nil {
		return err
	}

	for _, k := range fixedKeys {
		if cur[k] != next[k] {
			return api.StatusErrorf(http.StatusBadRequest, "config key %q cannot be changed (from %q to %q)", k, cur[k], next[k])
		}
	}

	return nil
}

func checkSource(v string) error {
	if v == "" {
		return nil
	}

	if !filepath.IsAbs(v) || filepath.Clean(v) != v || v == "/" {
		return fmt.Errorf("%q is not a clean absolute path", v)
	}

	return nil
}

// loopSize parses a btrfs loop pool's size ("" is the default).
func loopSize(v string) (int64, error) {
	if v == "" {
		return defaultLoopSize, nil
	}

	n, err := instance.ParseBytes(v)
	if err != nil {
		return 0, fmt.Errorf("invalid size %q: %w", v, err)
	}

	if n < minLoopSize || n > maxLoopSize {
		return 0, fmt.Errorf("size %q is out of range (%dMiB to %dTiB)", v, minLoopSize>>20, maxLoopSize>>40)
	}

	return n, nil
}

func checkSize(v string) error {
	_, err := loopSize(v)
	return err
}

// mountOptions are the btrfs options an admin may set; others (subvol=, device=) could
// make the pool mount something else.
var mountOptions = []string{"compress", "compress-force", "noatime", "relatime", "autodefrag", "noautodefrag", "discard", "nodiscard", "ssd", "nossd", "space_cache", "commit"}

func checkMountOptions(v string) error {
	for o := range strings.SplitSeq(v, ",") {
		name, _, _ := strings.Cut(o, "=")
		if !slices.Contains(mountOptions, name) {
			return fmt.Errorf("mount option %q is not allowed (have %s)", o, strings.Join(mountOptions, ", "))
		}
	}

	return nil
}
