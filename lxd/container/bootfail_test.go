package container

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// inotifyDeath is what systemd 252 printed as PID 1 when the host's inotify instances were
// spent (a real console, colours and CR LF line ends included).
const inotifyDeath = "systemd 252.39-1~deb12u2 running in system mode (+PAM +AUDIT default-hierarchy=unified)\r\r\n" +
	"Detected virtualization container-other.\r\r\n\r\r\n" +
	"Welcome to \x1b[1mDebian GNU/Linux 12 (bookworm)\x1b[0m!\r\r\n\r\r\n" +
	"Initializing machine ID from container UUID.\r\r\n" +
	"\x1b[0;1;31mFailed to create control group inotify object: Too many open files\x1b[0m\r\r\n" +
	"\x1b[0;1;31mFailed to allocate manager object: Too many open files\x1b[0m\r\r\n" +
	"[\x1b[0;1;31m!!!!!!\x1b[0m] Failed to allocate manager object.\r\r\n" +
	"\x1b[0;1;31mExiting PID 1...\x1b[0m\r\r\n"

func TestBootReason(t *testing.T) {
	exit255 := &Exit{Code: 255, Reason: "exit"}
	for _, c := range []struct {
		name, console string
		exit          *Exit
		want          string
	}{
		{"inotify instances", inotifyDeath, exit255,
			"systemd: Too many open files (inotify): raise fs.inotify.max_user_instances"},
		{"inotify watches", "systemd 252 running in system mode\nFailed to add inotify watch: No space left on device\n", exit255,
			"systemd: No space left on device (inotify watches): raise fs.inotify.max_user_watches"},
		{"other failure quoted", "systemd 252 running in system mode\r\nFailed to mount API filesystems: Permission denied\r\nExiting PID 1...\r\n", exit255,
			"systemd: Failed to mount API filesystems: Permission denied"},
		{"last boot only", inotifyDeath + "systemd 252 running in system mode\nFailed to fork: Resource temporarily unavailable\n", exit255,
			"systemd: Failed to fork: Resource temporarily unavailable"},
		{"not systemd", "Failed to mount /proc: No such device\n", exit255, "init: Failed to mount /proc: No such device"},
		{"silent exit", "", exit255, "init exited with status 255 and its console says no more (berth console --show-log)"},
		{"silent signal", "systemd 252 running in system mode\n", &Exit{Signal: 11, Reason: "signal"},
			"systemd was killed by signal 11 and its console says no more (berth console --show-log)"},
		{"no record", "", nil, "init ended and its console says no more (berth console --show-log)"},
	} {
		t.Run(c.name, func(t *testing.T) {
			got := BootReason([]byte(c.console), c.exit)
			if got != c.want {
				t.Errorf("BootReason = %q\nwant %q", got, c.want)
			}
		})
	}
}

// TestBootReasonHostile: a console is the container's to write. What is quoted from it is
// printable, valid UTF-8 and short, whatever it holds.
func TestBootReasonHostile(t *testing.T) {
	long := "Failed to " + strings.Repeat("é", 5000) + "\n"
	esc := "Failed to \x1b]0;title\x07x\x1b[31;1mred\x1b[0m\x00\x08\x7f\xff\xfe done\n"
	unterminated := "Failed to \x1b[999999"

	for _, console := range []string{long, esc, unterminated, strings.Repeat("\n", 1<<16), strings.Repeat("\x1b[", 1<<15)} {
		got := BootReason([]byte(console), nil)
		if len(got) > 2*maxReason+100 {
			t.Errorf("reason of %d bytes", len(got))
		}

		if !utf8.ValidString(got) {
			t.Errorf("reason %q is not valid UTF-8", got)
		}

		for _, r := range got {
			if r < 0x20 || r == 0x7f {
				t.Errorf("reason %q holds %U", got, r)
			}
		}
	}

	got := BootReason([]byte(esc), nil)
	if strings.ContainsAny(got, "\x1b\x00\x07\x08\x7f") || !strings.HasPrefix(got, "init: Failed to ") {
		t.Errorf("escapes kept: %q", got)
	}
}

// TestProcChecks drives the /proc readers on real processes: a live child that is not
// systemd and not in an init.scope, then the same child as a zombie, then reaped.
func TestProcChecks(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	err := cmd.Start()
	if err != nil {
		t.Fatal(err)
	}

	pid := cmd.Process.Pid
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	if !running(pid) || isSystemd(pid) || inInitScope(pid) {
		t.Fatalf("live sleep: running %v, systemd %v, init.scope %v", running(pid), isSystemd(pid), inInitScope(pid))
	}

	_ = cmd.Process.Kill()
	deadline := time.Now().Add(5 * time.Second)
	for running(pid) && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}

	if running(pid) {
		t.Fatal("a killed, unreaped child still counts as running")
	}

	_ = cmd.Wait()
	if running(pid) || running(os.Getpid()) == false {
		t.Errorf("reaped child running %v, self running %v", running(pid), running(os.Getpid()))
	}
}
