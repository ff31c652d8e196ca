package integration

import (
	"encoding/binary"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/test/testutil"
)

// Attacks on the kernel and on the daemon's keyring from root inside a
// container, through both ways a tenant runs code: `berth exec` and init's
// own descendants (a systemd service). The attacks are a static C program
// built on the host (testdata/attack_seccomp.c) and pushed in.

// secret is what the test puts in the daemon's session keyring.
const secret = "host-secret"

// TestAttackSeccomp: the default deny list (plus security.syscalls.deny)
// holds on both ABIs for exec'd commands and init's descendants, the
// daemon's session keyring is out of reach of both, exec'd commands have
// init's bounding set, and bad policies are refused.
func TestAttackSeccomp(t *testing.T) {
	parallel(t)
	attack := buildAttack(t)
	d, key, ring := startDaemonWithSessionKey(t)

	d.berth("launch", "debian/12", "sc1", "-c", "security.syscalls.deny=mincore")

	if st := d.waitRunning("sc1"); st != "running" {
		t.Fatalf("sc1 is %q", st)
	}

	d.berth("file", "push", "--mode", "0755", attack, "sc1/root/attack")

	inExec := func(t *testing.T, args ...string) string {
		t.Helper()

		out, err := d.berthErr(append([]string{"exec", "sc1", "--"}, args...)...)
		if err != nil {
			t.Fatalf("berth exec %v: %v: %s", args, err, out)
		}

		return out
	}

	// A transient service: a child of PID 1, with PID 1's session keyring.
	service := func(t *testing.T, args ...string) string {
		t.Helper()
		return inExec(t, append([]string{"systemd-run", "--wait", "--pipe", "--quiet", "-p", "KeyringMode=inherit"}, args...)...)
	}

	host := hostInt80(t, attack)

	for via, run := range map[string]func(*testing.T, ...string) string{"exec": inExec, "init": service} {
		t.Run("syscalls/"+via, func(t *testing.T) {
			got := results(run(t, "/root/attack", "syscalls", "/root/scratch-"+via))

			eperm := strconv.Itoa(int(unix.EPERM))
			for _, name := range []string{"kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
				"open_by_handle_at", "umount2_force", "mincore", "x32_getpid"} {
				if got[name] != eperm {
					t.Errorf("%s: %q, want EPERM (%s)", name, got[name], eperm)
				}
			}

			// Controls: the same shapes, allowed, succeed: the tmpfs the
			// forced unmount aimed at is still there and unmounts plainly;
			// the handle to open was made.
			for _, name := range []string{"name_to_handle_at", "umount2"} {
				if got[name] != "0" {
					t.Errorf("control %s: %q, want success", name, got[name])
				}
			}

			if host {
				if got["int80_umount2_force"] != eperm {
					t.Errorf("i386 forced umount2: %q, want EPERM", got["int80_umount2_force"])
				}

				if got["int80_getpid"] != "0" {
					t.Errorf("control i386 getpid: %q, want success", got["int80_getpid"])
				}
			} else if got["int80_getpid"] != "unavailable" || got["int80_umount2_force"] != "unavailable" {
				t.Errorf("int 0x80 unavailable on the host but %q inside", got)
			}
		})

		t.Run("keyring/"+via, func(t *testing.T) {
			got := results(run(t, "/root/attack", "keyring", strconv.Itoa(key), strconv.Itoa(ring)))

			if got["session"] == strconv.Itoa(ring) {
				t.Errorf("the %s's session keyring is the daemon's (%d)", via, ring)
			}

			for _, name := range []string{"read", "search", "link", "setperm", "unlink", "clear", "revoke"} {
				if got[name] == "0" {
					t.Errorf("%s on the daemon's key or keyring succeeded", name)
				}
			}

			if got["own_add"] != "0" || got["own_read"] != "0" {
				t.Errorf("control: the %s's own session keyring: %v", via, got)
			}

			checkSessionKey(t, key, ring)
		})
	}

	t.Run("status", func(t *testing.T) {
		init := procStatus(t, d.initPID("sc1"))
		self := results(strings.ReplaceAll(inExec(t, "grep", "-E", "^(Seccomp|CapBnd):", "/proc/self/status"), ":\t", "="))

		if init["Seccomp"] != "2" || self["Seccomp"] != "2" {
			t.Errorf("seccomp mode: init %q, exec %q; want 2 (filter)", init["Seccomp"], self["Seccomp"])
		}

		if init["CapBnd"] == "" || self["CapBnd"] != init["CapBnd"] {
			t.Errorf("CapBnd: init %q, exec %q", init["CapBnd"], self["CapBnd"])
		}
	})

	t.Run("config", func(t *testing.T) {
		path := "/1.0/instances/sc1"
		_, _, etag := d.rawH("GET", path, nil, nil)

		for body, want := range map[string]string{
			`{"config":{"security.syscalls.deny":"kexec_load,no_such_call"}}`: `no_such_call`,
			`{"config":{"security.syscalls.deny_compat":"maybe"}}`:            `security.syscalls.deny_compat`,
			`{"config":{"security.syscalls.allow":"execve,read"}}`:            `cannot be combined with security.syscalls.deny`,
		} {
			code, env, _ := d.rawH("PATCH", path, strings.NewReader(body), nil)
			if code != 400 || !strings.Contains(env.Error, want) {
				t.Errorf("PATCH %s: %d %q, want 400 naming %q", body, code, env.Error, want)
			}
		}

		_, _, after := d.rawH("GET", path, nil, nil)
		if after != etag {
			t.Errorf("a refused PATCH changed the instance (ETag %s -> %s)", etag, after)
		}
	})
}

// buildAttack compiles the attack program, static: the image has no
// compiler and its libc is not ours.
func buildAttack(t *testing.T) string {
	t.Helper()

	out := filepath.Join(t.TempDir(), "attack")

	b, err := exec.Command("gcc", "-static", "-O2", "-Wall", "-o", out, "testdata/attack_seccomp.c").CombinedOutput()
	if err != nil {
		testutil.SkipOrFail(t, "building the attack program: %v: %s", err, b)
	}

	return out
}

// hostInt80 says whether this kernel runs i386 system calls at all (some
// hosts turn ia32 emulation off; then no process can, inside or out).
func hostInt80(t *testing.T, attack string) bool {
	t.Helper()

	out, err := exec.Command(attack, "int80").Output()
	if err != nil {
		t.Fatalf("probing int 0x80: %v", err)
	}

	v := results(string(out))["int80_getpid"]
	if v == "unavailable" {
		t.Log("this kernel has no i386 entry point: the i386 rules are checked by lxd/confine's tests only")
	}

	return v == "0"
}

// startDaemonWithSessionKey starts a berthd whose session keyring holds a
// key, as when an admin starts it from a login shell. It returns the key
// and the keyring. The key's permissions give its owner (host root) and
// its possessors everything, anyone else nothing.
func startDaemonWithSessionKey(t *testing.T) (*daemon, int, int) {
	t.Helper()
	requireSetup(t)

	dir, err := os.MkdirTemp("/tmp", "bt-")
	if err != nil {
		t.Fatal(err)
	}

	d := &daemon{t: t, dir: dir}

	type result struct {
		key, ring int
		err       error
		started   bool
	}

	ch := make(chan result, 1)

	go func() {
		var r result

		defer func() { ch <- r }()

		// Keyrings are per thread: fork berthd from this one, and let the
		// thread die with its goroutine (never unlocked).
		runtime.LockOSThread()

		id, _, errno := unix.RawSyscall(unix.SYS_KEYCTL, unix.KEYCTL_JOIN_SESSION_KEYRING, 0, 0)
		if errno != 0 {
			r.err = fmt.Errorf("joining a session keyring: %w", errno)
			return
		}

		r.ring = int(id)

		r.key, r.err = unix.AddKey("user", "berth-test-secret", []byte(secret), unix.KEY_SPEC_SESSION_KEYRING)
		if r.err == nil {
			r.err = unix.KeyctlSetperm(r.key, 0x3f3f0000)
		}

		if r.err != nil {
			return
		}

		d.start()
		r.started = true
	}()

	r := <-ch
	if r.err != nil {
		t.Fatal(r.err)
	}

	t.Cleanup(func() { d.destroy() })

	if !r.started {
		t.FailNow()
	}

	out := d.berth("image", "import", imagePath, "--alias", "debian/12")
	if !strings.Contains(out, "fingerprint") {
		t.Fatalf("image import said %q", out)
	}

	t.Cleanup(func() { _, _ = unix.KeyctlInt(unix.KEYCTL_REVOKE, r.key, 0, 0, 0) })

	return d, r.key, r.ring
}

// checkSessionKey checks, from the host, that the key is intact: same
// payload and permissions, still in the daemon's keyring.
func checkSessionKey(t *testing.T, key, ring int) {
	t.Helper()

	buf := make([]byte, 64)

	n, err := unix.KeyctlBuffer(unix.KEYCTL_READ, key, buf, 0)
	if err != nil || string(buf[:min(n, len(buf))]) != secret {
		t.Errorf("the daemon's key now reads %q, %v", buf[:max(0, min(n, len(buf)))], err)
	}

	desc, err := unix.KeyctlString(unix.KEYCTL_DESCRIBE, key)
	if err != nil || !strings.HasPrefix(desc, "user;0;0;3f3f0000;") {
		t.Errorf("the daemon's key is now %q, %v", desc, err)
	}

	ids := make([]byte, 4096)

	n, err = unix.KeyctlBuffer(unix.KEYCTL_READ, ring, ids, 0)
	found := false

	for i := 0; err == nil && i+4 <= min(n, len(ids)); i += 4 {
		found = found || int(int32(binary.NativeEndian.Uint32(ids[i:]))) == key
	}

	if !found {
		t.Errorf("the daemon's keyring no longer holds its key (%v)", err)
	}
}

// results parses name=value lines.
func results(out string) map[string]string {
	m := map[string]string{}

	for _, line := range strings.Split(out, "\n") {
		k, v, ok := strings.Cut(strings.TrimSpace(line), "=")
		if ok {
			m[k] = v
		}
	}

	return m
}
