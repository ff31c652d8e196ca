package idmap

import (
	"testing"

	"golang.org/x/sys/unix"
)

// TestOpenDirBeneathCloexec: the directory fds a shifting copy opens, its root's copy
// included, are close-on-exec, so no program the daemon starts meanwhile inherits a way
// into a container's tree. unix.Dup's copy is not: the test fails with it.
func TestOpenDirBeneathCloexec(t *testing.T) {
	root, err := unix.Open(t.TempDir(), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}

	defer unix.Close(root)
	fd, err := openDirBeneath(root, "")
	if err != nil {
		t.Fatal(err)
	}

	defer unix.Close(fd)
	flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
	if err != nil {
		t.Fatal(err)
	}

	if flags&unix.FD_CLOEXEC == 0 {
		t.Fatalf("the copy of a tree's root fd is inherited by programs the daemon starts (flags %#x)", flags)
	}
}
