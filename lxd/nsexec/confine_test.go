package nsexec

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/berth-dev/berth/lxd/confine"
	"golang.org/x/sys/unix"
)

// envProbe makes the test binary, exec'd as a command, report what it was
// given (TestMain).
const envProbe = "_BERTH_NSEXEC_TEST_PROBE"

// probe prints its seccomp mode and bounding set, its session keyring and
// how a forced unmount ends.
func probe() int {
	status, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(status), "\n") {
		if strings.HasPrefix(line, "Seccomp:") || strings.HasPrefix(line, "CapBnd:") {
			fmt.Println(strings.Join(strings.Fields(line), ""))
		}
	}

	fmt.Printf("Session:%d\n", sessionKeyring())

	path := []byte("/berth-no-such-mount\x00")
	_, _, e := unix.RawSyscall(unix.SYS_UMOUNT2, uintptr(unsafe.Pointer(&path[0])), unix.MNT_FORCE, 0)
	fmt.Printf("ForcedUmount:%d\n", int(e))

	return 0
}

func sessionKeyring() int {
	id, err := unix.KeyctlGetKeyringID(unix.KEY_SPEC_SESSION_KEYRING, false)
	if err != nil {
		return -int(err.(unix.Errno))
	}

	return id
}

// TestCommandsAreConfinedLikeInit: every command gets init's bounding set
// (not the daemon's), the container's seccomp filter and a session keyring
// of its own, in both ways of starting it.
func TestCommandsAreConfinedLikeInit(t *testing.T) {
	eachMode(t, testCommandsAreConfinedLikeInit)
}

func testCommandsAreConfinedLikeInit(t *testing.T, start starter) {
	// An init with a smaller bounding set than ours.
	pid := targetCmd(t, "setpriv", "--bounding-set", "-sys_rawio,-sys_time,-mac_admin", "sleep", "600")

	// Once setpriv has exec'd sleep, the set is final.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		if string(comm) == "sleep\n" {
			break
		}

		if time.Now().After(deadline) {
			t.Fatalf("target still %q", comm)
		}
	}

	initBnd, err := confine.Bounding(pid)
	if err != nil {
		t.Fatal(err)
	}

	const dropped = 1<<unix.CAP_SYS_RAWIO | 1<<unix.CAP_SYS_TIME | 1<<unix.CAP_MAC_ADMIN
	if initBnd&dropped != 0 {
		t.Fatalf("init's CapBnd %x still has the dropped capabilities", initBnd)
	}

	f, err := confine.Compile(confine.DefaultPolicy())
	if err != nil {
		t.Fatal(err)
	}

	// Ours, made sure to exist so that "not the daemon's" means something.
	_, err = unix.KeyctlGetKeyringID(unix.KEY_SPEC_SESSION_KEYRING, true)
	if err != nil {
		t.Fatal(err)
	}

	daemon := sessionKeyring()
	seen := map[string]bool{}
	exe := probeExe(t)

	for range 2 {
		out := probeIn(t, start, pid, exe, f.Program)

		if out["CapBnd"] != fmt.Sprintf("%016x", initBnd) {
			t.Errorf("command's CapBnd %s, init's %016x", out["CapBnd"], initBnd)
		}

		if out["Seccomp"] != "2" {
			t.Errorf("command's seccomp mode %q, want 2 (filter)", out["Seccomp"])
		}

		if out["ForcedUmount"] != fmt.Sprint(int(unix.EPERM)) {
			t.Errorf("forced umount2 ended with errno %s, want EPERM", out["ForcedUmount"])
		}

		ses := out["Session"]
		if ses == fmt.Sprint(daemon) || seen[ses] {
			t.Errorf("command's session keyring %s: the daemon's is %d, earlier commands' %v", ses, daemon, seen)
		}

		seen[ses] = true
	}
}

// probeExe is a copy of the test binary that the target's root may run
// (go test keeps it in a directory only host root can enter).
func probeExe(t *testing.T) string {
	t.Helper()

	dir, err := os.MkdirTemp("", "berth-probe-")
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = os.RemoveAll(dir) })

	b, err := os.ReadFile(testExe(t))
	if err == nil {
		err = os.Chmod(dir, 0o755)
	}

	if err == nil {
		err = os.WriteFile(dir+"/probe", b, 0o755)
	}

	if err != nil {
		t.Fatal(err)
	}

	return dir + "/probe"
}

func probeIn(t *testing.T, start starter, pid int, exe string, seccomp []byte) map[string]string {
	t.Helper()

	stdout, stderr, code, err := run(t, start, pid, Options{
		Command: []string{exe},
		Env:     []string{envProbe + "=1"},
		Seccomp: seccomp,
	})
	if err != nil || code != 0 {
		t.Fatalf("probe: code %d, %v: %s", code, err, stderr)
	}

	out := map[string]string{}

	for _, line := range strings.Fields(stdout) {
		k, v, _ := strings.Cut(line, ":")
		out[k] = v
	}

	return out
}
