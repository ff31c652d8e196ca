package project

import (
	"net/url"
	"strings"
)

// VolumeSep separates a custom volume's name from its project in a volume key.
//
// A custom volume's key is its database name and its host-side name (the directory or
// btrfs subvolume under the pool's custom/ and custom-snapshots/, its backups, its
// operation markers): its name in the default project (so volumes made before projects
// had volumes keep their names and nothing moves on disk), "<name>@<project>" elsewhere.
// Why '@' and not '_' as instance keys: a volume name may hold '_' ("a_data" is a valid
// volume of the default project) but never '@' (lxd/volumes.ValidateName), so a key with
// '@' is never a default project's volume, and the part before the first '@' is the
// name. Why the name first: it starts with a letter or digit, so a key never starts
// with '.' as a project name may (".tmp-x@vol" would look like a leftover temporary
// tree of the pool, removed at start). Project names never hold '/' either, so a key is
// always one path component.
const VolumeSep = "@"

// VolumeKey is the key of volume name of project proj (the project that owns it, see
// lxd/db VolumeProject). An empty project is the default one. An empty name gives the
// project's prefix, which VolumeName reads back as "".
func VolumeKey(proj, name string) string {
	if proj == "" || proj == Default {
		return name
	}

	return name + VolumeSep + proj
}

// SplitVolume reverses VolumeKey.
func SplitVolume(key string) (proj, name string) {
	n, p, ok := strings.Cut(key, VolumeSep)
	if !ok {
		return Default, key
	}

	return p, n
}

// VolumeName is the name of a volume key inside its project.
func VolumeName(key string) string {
	_, n := SplitVolume(key)
	return n
}

// VolumeProject is the project of a volume key.
func VolumeProject(key string) string {
	p, _ := SplitVolume(key)
	return p
}

// VolumeURL is the API URL of a custom volume key as LXD writes it: its name, then the
// path elements of sub (snapshots, backups), then ?project= outside the default project.
func VolumeURL(pool, key string, sub ...string) string {
	proj, name := SplitVolume(key)
	u := "/1.0/storage-pools/" + url.PathEscape(pool) + "/volumes/custom/" + url.PathEscape(name)
	for _, s := range sub {
		u += "/" + url.PathEscape(s)
	}

	if proj != Default {
		u += "?project=" + url.QueryEscape(proj)
	}

	return u
}
