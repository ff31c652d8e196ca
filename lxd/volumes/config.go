package volumes

import (
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
	"github.com/berth-dev/berth/shared/validate"
)

const (
	customDir    = "custom"
	snapshotsDir = "custom-snapshots"

	// Limits on what a request may store.
	maxKeys        = 64
	maxValueLen    = 4096
	maxDescription = 4096
	// maxSnapshots bounds the snapshots of one volume (each may hold a full copy).
	maxSnapshots = 256
	// maxBackups bounds the exported backups a volume keeps (each a full copy).
	maxBackups = 16
)

var nameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$`)

// ValidateName checks a volume or snapshot name: it names a directory and appears in URLs
// and in disk devices' source.
func ValidateName(kind, name string) error {
	if !nameRE.MatchString(name) || strings.Contains(name, "..") {
		return api.StatusErrorf(http.StatusBadRequest, "invalid %s name %q: 1 to 63 letters, digits, '_', '.' or '-', starting with a letter or digit", kind, name)
	}

	return nil
}

// checkType refuses volume types other than custom: instance and image volumes are the
// pool's own and are not served here.
func checkType(t string) error {
	if t != "custom" && t != "" {
		return api.StatusErrorf(http.StatusBadRequest, "storage volume type %q is not supported (only custom volumes are)", t)
	}

	return nil
}

func checkContentType(ct string) error {
	if ct != "filesystem" && ct != "" {
		return api.StatusErrorf(http.StatusBadRequest, "content_type %q is not supported (only filesystem is)", ct)
	}

	return nil
}

// keys are the volume config keys Berth knows; user.* keys are free-form.
var keys = map[string]func(string) error{
	"size":            checkSize,
	"security.shared": validate.Bool,
	// LXD's; accepted so that a volume round-trips, meaningless here (ids are always
	// shifted by an idmapped mount, see the package comment).
	"security.shifted":  validate.Bool,
	"snapshots.expiry":  func(string) error { return nil },
	"snapshots.pattern": func(string) error { return nil },
}

// validateConfig checks keys and values of a volume's config.
func validateConfig(config map[string]string) error {
	if len(config) > maxKeys {
		return api.StatusErrorf(http.StatusBadRequest, "too many config keys (%d, at most %d)", len(config), maxKeys)
	}

	for k, v := range config {
		if len(k) > 256 || len(v) > maxValueLen {
			return api.StatusErrorf(http.StatusBadRequest, "config key %q: key or value too long (value at most %d bytes)", k, maxValueLen)
		}

		if strings.ContainsAny(k+v, "\x00") {
			return api.StatusErrorf(http.StatusBadRequest, "config key %q contains NUL", k)
		}

		if strings.HasPrefix(k, "user.") {
			continue
		}

		check, ok := keys[k]
		if !ok {
			return api.StatusErrorf(http.StatusBadRequest, "unknown volume config key %q", k)
		}

		err := check(v)
		if err != nil {
			return api.StatusErrorf(http.StatusBadRequest, "config key %q: %v", k, err)
		}
	}

	return nil
}

func checkDescription(d string) error {
	if len(d) > maxDescription {
		return api.StatusErrorf(http.StatusBadRequest, "description longer than %d bytes", maxDescription)
	}

	return nil
}

func checkSize(v string) error {
	if v == "" {
		return nil
	}

	_, err := parseSize(v)
	return err
}

var units = map[string]int64{
	"": 1, "B": 1,
	"kB": 1000, "MB": 1000 * 1000, "GB": 1000 * 1000 * 1000, "TB": 1000 * 1000 * 1000 * 1000,
	"KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40,
}

// parseSize reads a size like 10GiB or 500MB.
func parseSize(v string) (int64, error) {
	i := strings.IndexFunc(v, func(r rune) bool { return (r < '0' || r > '9') && r != '.' })
	num, unit := v, ""
	if i >= 0 {
		num, unit = v[:i], v[i:]
	}

	mult, ok := units[unit]
	if !ok || num == "" {
		return 0, fmt.Errorf("%q is not a size like 10GiB", v)
	}

	var n float64
	_, err := fmt.Sscanf(num, "%g", &n)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("%q is not a positive size", v)
	}

	b := n * float64(mult)
	if b < 1<<20 || b >= 1<<62 {
		return 0, fmt.Errorf("%q is not a size from 1MiB to 4EiB", v)
	}

	return int64(b), nil
}

func volumeDir(poolDir, name string) string { return filepath.Join(poolDir, customDir, name) }
func snapshotsOf(poolDir, name string) string {
	return filepath.Join(poolDir, snapshotsDir, name)
}

func snapshotDir(poolDir, name, snap string) string {
	return filepath.Join(snapshotsOf(poolDir, name), snap)
}

// URL is the API address of a custom volume key, with the path elements of sub after it
// (shared/project VolumeURL: ?project= outside the default project).
func URL(pool, key string, sub ...string) string {
	return project.VolumeURL(pool, key, sub...)
}

func snapshotURL(pool, key, snap string) string {
	return URL(pool, key, "snapshots", snap)
}

// ETag is LXD's: the fields a PUT can change.
func ETag(v *api.StorageVolume) any {
	return []any{v.Name, v.Type, v.Config}
}
