// Package project names projects and the things that live in them. Every host-side name
// of an instance (its storage directory, cgroup, run directory, monitor socket, veth and
// nft names, lxcfs paths) is derived from its key: the instance's name in the default
// project (so containers made before projects keep their names across the upgrade), and
// "<project>_<name>" elsewhere, as LXD names them. Project names may not contain '_' and
// instance names may not either, so a key names exactly one (project, name) pair and two
// projects' instances of the same name never share a host object.
package project

import (
	"context"
	"fmt"
	"net/url"
	"strings"

	"github.com/berth-dev/berth/shared/validate"
)

// Default is the project that always exists and owns everything made before projects.
const Default = "default"

// maxNameLen keeps a key ("<project>_<name>", names up to 63 characters) short enough
// for the host's path and name limits that the instance name already respects.
const maxNameLen = 63

// ValidateName checks a project name: 1 to 63 characters, no '/', '_', whitespace,
// control characters or '%', and not "." or ".." (LXD refuses '_' and '/' too).
func ValidateName(name string) error {
	if name == "" {
		return fmt.Errorf("project name is empty")
	}

	if len(name) > maxNameLen {
		return fmt.Errorf("project name %q is longer than %d characters", name, maxNameLen)
	}

	if name == "." || name == ".." || name == "*" {
		return fmt.Errorf("project name %q is not allowed", name)
	}

	for _, c := range name {
		if c <= 0x20 || c == 0x7f || strings.ContainsRune("/\\_%?#'\"", c) {
			return fmt.Errorf("project name %q contains %q, which is not allowed", name, c)
		}
	}

	return nil
}

// Key is the host-wide key of an instance: its name in the default project, else
// "<project>_<name>". An empty project is the default one.
func Key(proj, name string) string {
	if proj == "" || proj == Default {
		return name
	}

	return proj + "_" + name
}

// Split reverses Key: the project and name of an instance key.
func Split(key string) (proj, name string) {
	p, n, ok := strings.Cut(key, "_")
	if !ok {
		return Default, key
	}

	return p, n
}

// Name is the name of an instance key inside its project.
func Name(key string) string {
	_, n := Split(key)
	return n
}

// Of is the project of an instance key.
func Of(key string) string {
	p, _ := Split(key)
	return p
}

type ctxKey struct{}

// WithContext is ctx carrying the project a request addresses; the instance services
// key the names a request brings (a new instance, a copy's source) with it.
func WithContext(ctx context.Context, proj string) context.Context {
	return context.WithValue(ctx, ctxKey{}, proj)
}

// FromContext is the project ctx carries, the default one when none.
func FromContext(ctx context.Context) string {
	p, _ := ctx.Value(ctxKey{}).(string)
	if p == "" {
		return Default
	}

	return p
}

// MaxKeyLen bounds a key as the instance name bounds itself: the host paths built on it
// (the monitor's socket above all, at most 108 bytes) stay within their limits.
const MaxKeyLen = 63

// KeyFor is Key for a new name: a 400-worthy error when the key would be too long.
func KeyFor(proj, name string) (string, error) {
	k := Key(proj, name)
	if len(k) > MaxKeyLen {
		return "", fmt.Errorf("name %q is too long for project %q: the project's name and the instance's take at most %d characters together", name, proj, MaxKeyLen-1)
	}

	return k, nil
}

// ValidateKey checks an instance key: a valid instance name, with a valid project name
// before it outside the default project, MaxKeyLen at most.
func ValidateKey(key string) error {
	proj, name := Split(key)
	if proj != Default || strings.Contains(key, "_") {
		err := ValidateName(proj)
		if err != nil {
			return err
		}
	}

	err := validate.InstanceName(name)
	if err != nil {
		return err
	}

	if len(key) > MaxKeyLen {
		return fmt.Errorf("name %q is too long for project %q: the project's name and the instance's take at most %d characters together", name, proj, MaxKeyLen-1)
	}

	return nil
}

// ProfileKey is the host-wide key of a profile: its name in the default project, else
// "<project>/<name>". Profile names may hold '_' but never '/' (validate.EntityName),
// and project names never '/', so a key names exactly one (project, name) pair. Only a
// project with features.profiles owns profiles; others use the default project's.
func ProfileKey(proj, name string) string {
	if proj == "" || proj == Default {
		return name
	}

	return proj + "/" + name
}

// SplitProfile reverses ProfileKey.
func SplitProfile(key string) (proj, name string) {
	p, n, ok := strings.Cut(key, "/")
	if !ok {
		return Default, key
	}

	return p, n
}

// ProfileName is the name of a profile key inside its project.
func ProfileName(key string) string {
	_, n := SplitProfile(key)
	return n
}

// ProfileNames maps profile keys to the names an API client sees.
func ProfileNames(keys []string) []string {
	out := make([]string, 0, len(keys))
	for _, k := range keys {
		out = append(out, ProfileName(k))
	}

	return out
}

// ProfileURL is the API URL of a profile key as LXD writes it: its name, and ?project=
// outside the default project.
func ProfileURL(key string) string {
	proj, name := SplitProfile(key)
	u := "/1.0/profiles/" + url.PathEscape(name)
	if proj != Default {
		u += "?project=" + url.QueryEscape(proj)
	}

	return u
}
