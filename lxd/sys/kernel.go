package sys

import (
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// KernelVersion is the running kernel's release split into numbers.
type KernelVersion struct {
	Major, Minor, Patch int
	Release             string // uname -r, verbatim
}

// AtLeast reports whether the kernel is major.minor or newer.
func (k KernelVersion) AtLeast(major, minor int) bool {
	return k.Major > major || (k.Major == major && k.Minor >= minor)
}

// Kernel returns the running kernel's version.
func Kernel() (KernelVersion, error) {
	var u unix.Utsname

	err := unix.Uname(&u)
	if err != nil {
		return KernelVersion{}, fmt.Errorf("reading uname: %w", err)
	}

	return parseKernelRelease(unix.ByteSliceToString(u.Release[:]))
}

func parseKernelRelease(rel string) (KernelVersion, error) {
	k := KernelVersion{Release: rel}

	// "6.18.44-fc-v857": take the leading dotted numbers only.
	head := rel
	if i := strings.IndexFunc(rel, func(r rune) bool { return r != '.' && (r < '0' || r > '9') }); i >= 0 {
		head = rel[:i]
	}

	_, err := fmt.Sscanf(head, "%d.%d", &k.Major, &k.Minor)
	if err != nil {
		return k, fmt.Errorf("parsing kernel release %q: %w", rel, err)
	}

	_, _ = fmt.Sscanf(head, "%d.%d.%d", &k.Major, &k.Minor, &k.Patch)

	return k, nil
}
