package fileio

import (
	"fmt"
	"net/http"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/shared/api"
)

// kernelFS are filesystems whose files are kernel interfaces rather than data: a write
// there is a sysctl, a sysrq, a cgroup move, a firmware variable. Container root can mount
// or bind them into its tree; whatever runs the files API never writes or creates there,
// even where its credentials would let it (the belt to the file server's braces).
var kernelFS = map[uint32]string{
	unix.PROC_SUPER_MAGIC:      "proc",
	unix.SYSFS_MAGIC:           "sysfs",
	unix.CGROUP_SUPER_MAGIC:    "cgroup",
	unix.CGROUP2_SUPER_MAGIC:   "cgroup2",
	unix.DEBUGFS_MAGIC:         "debugfs",
	unix.TRACEFS_MAGIC:         "tracefs",
	unix.SECURITYFS_MAGIC:      "securityfs",
	unix.BPF_FS_MAGIC:          "bpf",
	0x62656570:                 "configfs", // CONFIGFS_MAGIC, not in x/sys/unix
	unix.EFIVARFS_MAGIC:        "efivarfs",
	unix.PSTOREFS_MAGIC:        "pstore",
	unix.SELINUX_MAGIC:         "selinuxfs",
	unix.SMACK_MAGIC:           "smackfs",
	unix.BINFMTFS_MAGIC:        "binfmt_misc",
	unix.NSFS_MAGIC:            "nsfs",
	unix.RDTGROUP_SUPER_MAGIC:  "resctrl",
	unix.DEVPTS_SUPER_MAGIC:    "devpts",
	unix.AAFS_MAGIC:            "apparmorfs",
	0x65735543:                 "fusectl", // FUSE_CTL_SUPER_MAGIC
	0x19800202:                 "mqueue",  // MQUEUE_MAGIC
	unix.USBDEVICE_SUPER_MAGIC: "usbdevfs",
}

// KernelFSName returns the name of the kernel interface filesystem fd is on, or "": the
// files API refuses to write there, and a disk device refuses to share it.
func KernelFSName(fd int) (string, error) {
	var st unix.Statfs_t
	for {
		err := unix.Fstatfs(fd, &st)
		if err == unix.EINTR {
			continue
		}

		if err != nil {
			return "", fmt.Errorf("identifying filesystem: %w", err)
		}

		return kernelFS[uint32(st.Type)], nil
	}
}

// checkWritable refuses (403) to write, create or remove through fd (the final file, or the
// directory an entry is made or removed in) when it is on a kernel interface filesystem.
func checkWritable(fd int, p string) error {
	name, err := KernelFSName(fd)
	if err != nil {
		return fmt.Errorf("%q: %w", p, err)
	}

	if name != "" {
		return api.StatusErrorf(http.StatusForbidden, "%q is on a %s filesystem: refusing to write kernel interface files", p, name)
	}

	return nil
}

// CheckWritable is checkWritable for writers outside this package (template rendering).
func CheckWritable(fd int, p string) error { return checkWritable(fd, p) }
