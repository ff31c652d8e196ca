// Package testutil holds what Berth's tests share. About their environment: a test that
// needs root or a kernel feature skips without it on a developer's machine, and fails in
// CI (CI or BERTH_TEST_STRICT set), where a skipped test would hide a broken run.
// For tests only: nothing outside _test.go files and test/ imports it.
package testutil

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"testing"
)

// Strict reports whether skipping is forbidden: CI or BERTH_TEST_STRICT is set.
func Strict() bool {
	return os.Getenv("CI") != "" || os.Getenv("BERTH_TEST_STRICT") != ""
}

// SkipOrFail skips t with the reason, or fails it in strict mode: for a test that cannot
// run here (no root, no dnsmasq, no cgroup2, no pty).
func SkipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()

	reason := fmt.Sprintf(format, args...)
	if Strict() {
		t.Fatalf("%s (CI/BERTH_TEST_STRICT set: not skipping)", reason)
	}

	t.Skip(reason)
}

// RequireRoot skips t (or fails it, in strict mode) unless the test runs as root; why
// says what root is needed for.
func RequireRoot(t testing.TB, why string) {
	t.Helper()

	if os.Geteuid() != 0 {
		SkipOrFail(t, "needs root to %s", why)
	}
}

// LookPath returns the path of the command name, or skips t (fails it, in strict mode)
// when it is not installed; from names what provides it ("Debian package lxd-client").
func LookPath(t testing.TB, name, from string) string {
	t.Helper()

	path, err := exec.LookPath(name)
	if err != nil {
		SkipOrFail(t, "%s is not installed (%s)", name, from)
	}

	return path
}

// Running says whether process pid runs: it exists and is not a zombie (ended, not yet
// reaped) or dead. The state in /proc/<pid>/stat follows the last ')', as the command
// name may hold spaces and parentheses.
func Running(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}

	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] != 'Z' && b[i+2] != 'X'
}
