// Package testns runs test code in a mount namespace of its own. It imports nothing of
// Berth, so the packages test/testutil imports (lxd/lxcfs, lxd/setup) can use it in
// their tests.
package testns

import (
	"os"
	"runtime"
	"testing"

	"golang.org/x/sys/unix"
)

// InPrivateMountNS runs fn on a locked thread with a mount namespace of its own, whose
// mounts are slaves of the host's, so nothing fn mounts reaches the host; the thread dies
// with it. It needs root: without, t is skipped, or failed where CI or
// BERTH_TEST_STRICT is set. An error from fn fails t.
func InPrivateMountNS(t testing.TB, fn func() error) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" || os.Getenv("BERTH_TEST_STRICT") != "" {
			t.Fatal("needs root to make a mount namespace")
		}

		t.Skip("needs root to make a mount namespace")
	}

	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread() // never unlocked: the thread ends with the goroutine
		err := unix.Unshare(unix.CLONE_NEWNS)
		if err == nil {
			err = unix.Mount("", "/", "", unix.MS_REC|unix.MS_SLAVE, "")
		}

		if err == nil {
			err = fn()
		}

		errc <- err
	}()

	err := <-errc
	if err != nil {
		t.Fatal(err)
	}
}
