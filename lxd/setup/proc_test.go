package setup

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"
)

// TestProcContextFor: a procfs made from outside for a pid namespace (the host side's,
// for init's) shows that namespace's processes, not ours.
func TestProcContextFor(t *testing.T) {
	strict := os.Getenv("CI") != "" || os.Getenv("BERTH_TEST_STRICT") != ""
	if os.Geteuid() != 0 {
		if strict {
			t.Fatal("needs root")
		}

		t.Skip("needs root")
	}

	sleeper := exec.Command("sleep", "60")
	sleeper.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWPID}
	err := sleeper.Start()
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() {
		_ = sleeper.Process.Kill()
		_ = sleeper.Wait()
	})

	pidns, err := os.Open(fmt.Sprintf("/proc/%d/ns/pid", sleeper.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = pidns.Close() }()

	ctx, err := ProcContextFor(int(pidns.Fd()))
	if err != nil {
		if strict {
			t.Fatalf("this kernel's procfs has no pidns parameter: %v", err)
		}

		t.Skipf("this kernel's procfs has no pidns parameter: %v", err)
	}

	defer func() { _ = unix.Close(ctx) }()

	err = unix.FsconfigCreate(ctx)
	if err != nil {
		t.Fatal(err)
	}

	mnt, err := unix.Fsmount(ctx, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}

	defer func() { _ = unix.Close(mnt) }()

	var pids []string
	ents, err := os.ReadDir(fmt.Sprintf("/proc/self/fd/%d", mnt))
	if err != nil {
		t.Fatal(err)
	}

	for _, e := range ents {
		if n := e.Name(); n[0] >= '0' && n[0] <= '9' {
			pids = append(pids, n)
		}
	}

	if strings.Join(pids, ",") != "1" {
		t.Errorf("the procfs shows pids %v, want only the sleeper, 1", pids)
	}

	comm, err := os.ReadFile(fmt.Sprintf("/proc/self/fd/%d/1/comm", mnt))
	if err != nil || strings.TrimSpace(string(comm)) != "sleep" {
		t.Errorf("pid 1 there is %q (%v), want sleep", comm, err)
	}
}
