package setup

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// loopbackUp sets IFF_UP on lo in the container's new network namespace,
// with an ioctl rather than netlink or an ip binary: it is one flag.
func loopbackUp() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening socket for lo: %w", err)
	}

	defer func() { _ = unix.Close(fd) }()

	ifr, err := unix.NewIfreq("lo")
	if err != nil {
		return fmt.Errorf("preparing request for lo: %w", err)
	}

	err = unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr)
	if err != nil {
		return fmt.Errorf("reading flags of lo: %w", err)
	}

	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)

	err = unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr)
	if err != nil {
		return fmt.Errorf("bringing lo up: %w", err)
	}

	return nil
}
