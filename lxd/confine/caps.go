package confine

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// KeepBounding drops from the calling thread's capability bounding set
// every capability not in keep (a CapBnd mask), so that what the thread
// execs can hold no more than keep. It needs CAP_SETPCAP in the current
// user namespace.
func KeepBounding(keep uint64) error {
	for c := 0; c < 64; c++ {
		if keep&(1<<c) != 0 {
			continue
		}

		in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, uintptr(c), 0, 0, 0)
		if err == unix.EINVAL {
			return nil // past the kernel's last capability
		}

		if err != nil {
			return fmt.Errorf("reading bounding set: %w", err)
		}

		if in == 0 {
			continue
		}

		err = unix.Prctl(unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0)
		if err != nil {
			return fmt.Errorf("dropping capability %d from the bounding set: %w", c, err)
		}
	}

	return nil
}

// Bounding reads the CapBnd of a process from the host's /proc: the
// daemon's view, a kernel-made file the container cannot touch. The caller
// checks afterwards (through a pidfd) that pid was not recycled meanwhile.
func Bounding(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("reading bounding set of %d: %w", pid, err)
	}

	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		v, ok := bytes.CutPrefix(sc.Bytes(), []byte("CapBnd:"))
		if ok {
			n, err := strconv.ParseUint(string(bytes.TrimSpace(v)), 16, 64)
			if err != nil {
				return 0, fmt.Errorf("parsing bounding set of %d: %w", pid, err)
			}

			return n, nil
		}
	}

	return 0, fmt.Errorf("no bounding set in /proc/%d/status", pid)
}
