package tuning

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/shared/mountinfo"
)

// Every start moves the container's init into its cgroups, and every exec server joins
// them. Each move write-locks one kernel lock that all hierarchies share
// (cgroup_threadgroup_rwsem), and unless the cgroup2 superblock has the favordynmods flag
// (Linux 6.1) taking it for writing first waits a full RCU grace period: 9 ms on the
// development VM, a third of berthd's whole start before systemd runs. favordynmods keeps
// the lock's readers (fork and exit) on their slower path for good instead, a few atomic
// operations per fork, and a move then costs 0.3 ms. It is a flag of the one cgroup2
// superblock, so setting it on any cgroup2 mount applies to all of them, and (the lock
// being shared) to a hybrid host's v1 hierarchies too. The kernel documents it as the
// setting for hosts that move processes between cgroups often; LXD leaves it to the admin.

// Dynmods is the cgroup2 superblock flag berthd sets.
const Dynmods = "favordynmods"

// ErrNoDynmods means the kernel has no favordynmods (it came with Linux 6.1).
var ErrNoDynmods = errors.New("this kernel has no cgroup2 favordynmods (Linux 6.1)")

// dynmodsPlan finds the cgroup2 mount to reconfigure and the flags its superblock has
// besides favordynmods (a cgroup2 reconfiguration sets every flag afresh, so one left out
// would be cleared); on says whether favordynmods is set. Only cgroup2's own flags count,
// those the kernel lists in /sys/kernel/cgroup/features (features): a security module's
// options in the same list are not cgroup2's to set. target is "" when the host mounts
// no cgroup2.
func dynmodsPlan(mounts []mountinfo.Mount, features map[string]bool) (target string, others []string, on bool) {
	for _, m := range mounts {
		if m.FSType != "cgroup2" {
			continue
		}

		for _, o := range strings.Split(m.SuperOptions, ",") {
			switch {
			case o == Dynmods:
				on = true
			case features[o]:
				others = append(others, o)
			}
		}

		return m.MountPoint, others, on
	}

	return "", nil, false
}

// cgroupFeatures reads the kernel's cgroup2 mount options (one per line).
func cgroupFeatures(path string) (map[string]bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}

	features := map[string]bool{}
	for _, f := range strings.Fields(string(b)) {
		features[f] = true
	}

	return features, nil
}

// FeaturesPath lists the kernel's cgroup2 mount options.
const FeaturesPath = "/sys/kernel/cgroup/features"

// reconfigureCgroup2 sets flags on the superblock of the cgroup2 mount at target
// (fspick, then one reconfiguration: the mount's own flags, nosuid and the like, are not
// touched, as a remount would).
func reconfigureCgroup2(target string, flags []string) error {
	fd, err := unix.Fspick(unix.AT_FDCWD, target, unix.FSPICK_CLOEXEC|unix.FSPICK_NO_AUTOMOUNT|unix.FSPICK_SYMLINK_NOFOLLOW)
	if err != nil {
		return fmt.Errorf("opening the cgroup2 superblock at %s: %w", target, err)
	}

	defer func() { _ = unix.Close(fd) }()

	for _, f := range flags {
		if strings.Contains(f, "=") {
			k, v, _ := strings.Cut(f, "=")
			err = unix.FsconfigSetString(fd, k, v)
		} else {
			err = unix.FsconfigSetFlag(fd, f)
		}

		if err != nil {
			return fmt.Errorf("cgroup2 option %s: %w", f, err)
		}
	}

	err = unix.FsconfigReconfigure(fd)
	if err != nil {
		return fmt.Errorf("reconfiguring the cgroup2 superblock at %s: %w", target, err)
	}

	return nil
}

// Cgroup2Flags reads the host's cgroup2 mount: where it is (target, "" for none), its
// superblock's cgroup2 flags other than favordynmods, and whether favordynmods is set.
// ErrNoDynmods when the kernel has no favordynmods.
func Cgroup2Flags(mountinfoPath string) (target string, others []string, dynmods bool, err error) {
	features, err := cgroupFeatures(FeaturesPath)
	if err != nil || !features[Dynmods] {
		return "", nil, false, ErrNoDynmods
	}

	mounts, err := mountinfo.ParseFile(mountinfoPath)
	if err != nil {
		return "", nil, false, err
	}

	target, others, dynmods = dynmodsPlan(mounts, features)

	return target, others, dynmods, nil
}

// FavorDynmods sets favordynmods on the host's cgroup2 superblock unless it is set (at
// berthd's start). changed says whether it did; target is the mount it looked at ("" for
// none).
func FavorDynmods(mountinfoPath string) (target string, changed bool, err error) {
	return SetDynmods(mountinfoPath, true)
}

// SetDynmods sets or clears favordynmods on the host's cgroup2 superblock, keeping its
// other flags (the tests clear it to see berthd set it). After a change it checks that
// the kernel kept the flag as asked and every other flag the superblock had.
func SetDynmods(mountinfoPath string, want bool) (target string, changed bool, err error) {
	target, others, on, err := Cgroup2Flags(mountinfoPath)
	if err != nil || target == "" || on == want {
		return target, false, err
	}

	flags := others
	if want {
		flags = append(slices.Clone(others), Dynmods)
	}

	err = reconfigureCgroup2(target, flags)
	if err != nil {
		return target, false, err
	}

	_, now, on, err := Cgroup2Flags(mountinfoPath)
	if err != nil {
		return target, true, err
	}

	if on != want {
		return target, true, fmt.Errorf("the kernel did not keep %s=%t", Dynmods, want)
	}

	for _, f := range others {
		if !slices.Contains(now, f) {
			return target, true, fmt.Errorf("reconfiguring cgroup2 dropped its %s flag", f)
		}
	}

	return target, true, nil
}
