package nsexec

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// user is the container's /etc/passwd entry for a uid.
type user struct {
	name string
	home string
}

// lookupUser reads the container's /etc/passwd. Without an entry the uid
// gets no name, and "/" as home (root: /root, as LXD).
func lookupUser(uid uint32) user {
	u := user{home: "/"}
	if uid == 0 {
		u = user{name: "root", home: "/root"}
	}

	eachLine("/etc/passwd", func(f []string) bool {
		if len(f) < 6 || f[2] != strconv.FormatUint(uint64(uid), 10) {
			return true
		}

		u.name = f[0]
		if f[5] != "" {
			u.home = f[5]
		}

		return false
	})

	return u
}

// supplementaryGroups is what initgroups(3) gives: gid plus every group of
// the container's /etc/group that lists name as a member.
func supplementaryGroups(name string, gid uint32) []int {
	groups := []int{int(gid)}
	if name == "" {
		return groups
	}

	eachLine("/etc/group", func(f []string) bool {
		if len(f) < 4 || !slices.Contains(strings.Split(f[3], ","), name) {
			return true
		}

		g, err := strconv.Atoi(f[2])
		if err == nil && !slices.Contains(groups, g) {
			groups = append(groups, g)
		}

		return true
	})

	return groups
}

// eachLine calls fn with the colon-separated fields of each line of a small
// file until fn returns false. A missing file has no lines, and so has one
// the container made hostile (safeconfig.go): a FIFO, a device, a huge or
// sparse file, anything on procfs or sysfs.
func eachLine(path string, fn func([]string) bool) {
	data, err := readConfig(path, maxConfigFile, configDeadline)
	if err != nil {
		return
	}

	for _, line := range strings.Split(string(data), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}

		if !fn(strings.Split(line, ":")) {
			return
		}
	}
}

// lookPath finds file in path (inside the container), as execvp would,
// from directory cwd ("" for the current one). It returns what to exec from
// cwd.
func lookPath(file, path, cwd string) (string, error) {
	if strings.Contains(file, "/") {
		return file, executable(inDir(cwd, file))
	}

	if path == "" {
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}

	var denied error

	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}

		p := filepath.Join(dir, file)

		err := executable(inDir(cwd, p))
		if err == nil {
			return p, nil
		}

		if errors.Is(err, unix.EACCES) && denied == nil {
			denied = err
		}
	}

	if denied != nil {
		return "", denied
	}

	return "", &fs.PathError{Op: "exec", Path: file, Err: unix.ENOENT}
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}

	if fi.IsDir() {
		return &fs.PathError{Op: "exec", Path: p, Err: unix.EACCES}
	}

	// With our effective ids and capabilities: access(2) would use the
	// real uid, which in the exec server is host root, unmapped here, and
	// with it no capability, so /root (0700) would hide /root/script.
	err = unix.Faccessat2(unix.AT_FDCWD, p, unix.X_OK, unix.AT_EACCESS)
	if err != nil {
		return &fs.PathError{Op: "exec", Path: p, Err: err}
	}

	return nil
}

// inDir is p as seen from directory cwd.
func inDir(cwd, p string) string {
	if cwd == "" || filepath.IsAbs(p) {
		return p
	}

	return filepath.Join(cwd, p)
}
