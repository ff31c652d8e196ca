package cgroup

import (
	"bytes"
	"errors"
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"
)

// ReadStats reads container name's resource use from the host's cgroup files for the
// instance state: three small files, no walk of the subtree and no round trip to its
// monitor, so that listing hundreds of running instances stays cheap. Processes is
// pids.current, the tasks (threads included) the pids controller counts, as LXD reports
// it; -1 where the pids controller is not there. parent is the daemon's cgroup parent
// (ParentFor). A group that does not exist (the container stopped) is ErrGone.
func ReadStats(parent, name string) (Stats, error) {
	l, err := host()
	if err != nil {
		return Stats{}, err
	}

	l.Parent = parent

	return l.ReadStats(name)
}

// ReadStats is ReadStats for this layout.
func (l Layout) ReadStats(name string) (Stats, error) {
	g, err := New(name, l)
	if err != nil {
		return Stats{}, err
	}

	var s Stats
	switch g := g.(type) {
	case *v1Group:
		s, err = g.readStats()
	case *v2Group:
		s, err = readStatsV2(g.dir)
	case *systemdGroup:
		s, err = readStatsV2(g.dir)
	default:
		return Stats{}, fmt.Errorf("no accounting for %T", g)
	}

	s.Processes = int(s.Pids)
	return s, err
}

// readStats reads the v1 controllers: on hybrid hosts they hold the accounting.
func (g *v1Group) readStats() (Stats, error) {
	s := Stats{Pids: -1}

	// Every container has a memory group: it tells whether the container still runs.
	d, ok := g.dirs["memory"]
	if ok {
		n, err := readNumber(d + "/memory.usage_in_bytes")
		if err != nil {
			return s, err
		}

		s.MemoryBytes = n
	}

	d, ok = g.dirs["cpuacct"]
	if ok {
		s.CPUNanos, _ = readNumber(d + "/cpuacct.usage")
	}

	d, ok = g.dirs["pids"]
	if ok {
		n, err := readNumber(d + "/pids.current")
		if err == nil {
			s.Pids = n
		}
	}

	return s, nil
}

// readStatsV2 reads a cgroup2 group: cpu.stat is there without the cpu controller, the
// memory and pids files only with theirs enabled above the group.
func readStatsV2(dir string) (Stats, error) {
	s := Stats{Pids: -1}

	var buf [stackFile]byte
	b, err := readSmall(dir+"/cpu.stat", buf[:])
	if err != nil {
		return s, err
	}

	for line := range bytes.SplitSeq(b, []byte("\n")) {
		v, ok := bytes.CutPrefix(line, []byte("usage_usec "))
		if ok {
			us, _ := strconv.ParseInt(string(v), 10, 64)
			s.CPUNanos = us * 1000
			break
		}
	}

	s.MemoryBytes, _ = readNumber(dir + "/memory.current")
	n, err := readNumber(dir + "/pids.current")
	if err == nil {
		s.Pids = n
	}

	return s, nil
}

// stackFile is the buffer readSmall reads into: cpu.stat and one-number files fit.
const stackFile = 1024

// readNumber reads a one-number cgroup file.
func readNumber(path string) (int64, error) {
	var buf [64]byte
	b, err := readSmall(path, buf[:])
	if err != nil {
		return 0, err
	}

	n, err := strconv.ParseInt(string(bytes.TrimSpace(b)), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("parsing %q: %w", path, err)
	}

	return n, nil
}

// readSmall reads a small kernel file into buf in one read(2): open, read, close and
// nothing else (os.Open would also try to add the file to the runtime's poller).
func readSmall(path string, buf []byte) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0)
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil, fmt.Errorf("%w: %s", ErrGone, path)
		}

		return nil, fmt.Errorf("opening %q: %w", path, err)
	}

	defer unix.Close(fd)

	n, err := unix.Read(fd, buf)
	if err != nil {
		return nil, fmt.Errorf("reading %q: %w", path, err)
	}

	return buf[:n], nil
}
