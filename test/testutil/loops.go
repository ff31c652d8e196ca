package testutil

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// detachLoops detaches the loop devices whose backing file is under dir: a btrfs pool's
// (LXDPeerConfig.Pool), once unmounted. LXD marks its loops autoclear, so the kernel has
// usually done it; one still attached after its last unmount holds its deleted file's
// space until detached, so it is detached here and reported.
func detachLoops(dir string) []string {
	problems := []string{}
	files, _ := filepath.Glob("/sys/block/loop*/loop/backing_file")
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			continue // detached meanwhile
		}

		backing := strings.TrimSuffix(strings.TrimSpace(string(data)), " (deleted)")
		if backing != dir && !strings.HasPrefix(backing, dir+"/") {
			continue
		}

		dev := "/dev/" + filepath.Base(filepath.Dir(filepath.Dir(f)))
		problems = append(problems, fmt.Sprintf("loop device %s still attached to %s", dev, backing))
		fd, err := unix.Open(dev, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			problems = append(problems, fmt.Sprintf("opening %s: %v", dev, err))
			continue
		}

		err = unix.IoctlSetInt(fd, unix.LOOP_CLR_FD, 0)
		_ = unix.Close(fd)
		if err != nil {
			problems = append(problems, fmt.Sprintf("detaching %s: %v", dev, err))
		}
	}

	return problems
}
