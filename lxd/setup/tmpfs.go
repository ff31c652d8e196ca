package setup

import (
	"fmt"
	"strconv"

	"golang.org/x/sys/unix"
)

// mountRunTmp gives the container fresh /dev/shm, /run and /tmp, owned by its
// root. Like every host-side mount they are locked: the container can mount
// over them, not remove or resize them.
func mountRunTmp(r *root, memLimit int64) error {
	for _, t := range []struct {
		path  string
		mode  string
		pct   int64 // of the host's memory, before the container's limit
		flags uintptr
	}{
		{"/dev/shm", "1777", 50, unix.MS_NOSUID | unix.MS_NODEV},
		{"/run", "755", 20, unix.MS_NOSUID | unix.MS_NODEV | unix.MS_STRICTATIME},
		{"/tmp", "1777", 50, unix.MS_NOSUID | unix.MS_NODEV},
	} {
		opts := fmt.Sprintf("mode=%s,size=%s", t.mode, tmpfsSize(t.pct, memLimit))

		err := r.mountAt("tmpfs", t.path, kindDir, "tmpfs", t.flags, opts)
		if err != nil {
			return err
		}
	}

	return nil
}

// tmpfsSize is the size= of a tmpfs that may take pct percent of the host's
// memory but no more than the container's memory limit (0: none). Its pages
// are charged to the container's memory cgroup either way; the size makes
// df and ENOSPC tell the truth instead of an out-of-memory kill.
func tmpfsSize(pct, limit int64) string {
	if limit <= 0 {
		return strconv.FormatInt(pct, 10) + "%"
	}

	var si unix.Sysinfo_t

	err := unix.Sysinfo(&si)
	if err == nil && int64(si.Totalram)*int64(si.Unit)/100*pct <= limit {
		return strconv.FormatInt(pct, 10) + "%"
	}

	return strconv.FormatInt(limit, 10)
}
