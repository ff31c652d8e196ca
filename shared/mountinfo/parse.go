package mountinfo

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Mount is one line of /proc/<pid>/mountinfo (proc(5)). Path fields are unescaped.
type Mount struct {
	ID           int
	ParentID     int
	Major, Minor int
	Root         string   // the root of the mount within its filesystem
	MountPoint   string   // relative to the reading process's root
	Options      string   // per-mount options ("rw,nosuid,relatime")
	Optional     []string // optional fields ("shared:8", "master:1", ...), possibly none
	FSType       string   // "cgroup", "overlay", or "fuse.lxcfs" style with a subtype
	Source       string   // filesystem-specific, "none" when there is none
	SuperOptions string   // per-superblock options
}

// maxLine bounds one line: overlay mounts list their layers in the options, which makes
// lines of kilobytes; nothing legitimate comes near this.
const maxLine = 1 << 20

// Parse reads a mountinfo table. The kernel separates fields with single spaces and
// escapes space, tab, newline and backslash in path fields, so fields are split on ' '
// only: splitting on any white space (strings.Fields) would cut a mount point whose name
// holds a vertical tab or a no-break space. A malformed line is an error naming it.
func Parse(r io.Reader) ([]Mount, error) {
	var out []Mount

	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLine)

	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		if line == "" {
			continue
		}

		m, err := parseLine(line)
		if err != nil {
			return nil, fmt.Errorf("mountinfo line %d: %w", n, err)
		}

		out = append(out, m)
	}

	err := sc.Err()
	if err != nil {
		return nil, fmt.Errorf("reading mountinfo: %w", err)
	}

	return out, nil
}

// ParseFile parses the mountinfo table at path, such as "/proc/self/mountinfo".
func ParseFile(path string) ([]Mount, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("reading mountinfo: %w", err)
	}

	defer func() { _ = f.Close() }()

	return Parse(f)
}

// Self parses /proc/self/mountinfo: the mounts of the caller's mount namespace.
func Self() ([]Mount, error) { return ParseFile("/proc/self/mountinfo") }

// parseLine parses one line:
// 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
func parseLine(line string) (Mount, error) {
	fields := strings.Split(line, " ")

	sep := -1
	for i := 6; i < len(fields); i++ {
		if fields[i] == "-" {
			sep = i
			break
		}
	}

	if sep < 0 || len(fields) != sep+4 {
		return Mount{}, fmt.Errorf("%q: not 6 fields, optional ones, \"-\" and 3 fields", line)
	}

	var m Mount

	var err error

	m.ID, err = strconv.Atoi(fields[0])
	if err == nil {
		m.ParentID, err = strconv.Atoi(fields[1])
	}

	if err != nil {
		return Mount{}, fmt.Errorf("%q: bad mount id: %w", line, err)
	}

	maj, min, ok := strings.Cut(fields[2], ":")
	if ok {
		m.Major, err = strconv.Atoi(maj)
		if err == nil {
			m.Minor, err = strconv.Atoi(min)
		}
	}

	if !ok || err != nil || m.ID < 0 || m.ParentID < 0 || m.Major < 0 || m.Minor < 0 {
		return Mount{}, fmt.Errorf("%q: bad ids or device %q", line, fields[2])
	}

	m.Root = Unescape(fields[3])
	m.MountPoint = Unescape(fields[4])
	m.Options = fields[5]

	for _, o := range fields[6:sep] {
		if o == "" {
			return Mount{}, fmt.Errorf("%q: empty optional field", line)
		}

		m.Optional = append(m.Optional, o)
	}

	m.FSType = fields[sep+1]
	m.Source = Unescape(fields[sep+2]) // may be empty: mount("", ...) is allowed
	m.SuperOptions = fields[sep+3]

	if m.MountPoint == "" || m.FSType == "" || m.Options == "" {
		return Mount{}, fmt.Errorf("%q: empty mount point, options or filesystem type", line)
	}

	return m, nil
}

// Under returns the mount points at or below dir, in table order (parents before the
// mounts on top of them; unmount in reverse).
func Under(mounts []Mount, dir string) []string {
	dir = filepath.Clean(dir)
	prefix := strings.TrimSuffix(dir, "/") + "/"

	var out []string

	for _, m := range mounts {
		if m.MountPoint == dir || strings.HasPrefix(m.MountPoint, prefix) {
			out = append(out, m.MountPoint)
		}
	}

	return out
}
