package migration

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/idmap"
)

// chrootEscape is the classic way out of a chroot for a process that may call chroot(2):
// chroot into a subdirectory, leaving the working directory outside the new root, then
// walk ".." from it. It prints "jailed: <errno>" if chroot(2) was refused, else "escaped"
// if it reached the host's /etc/passwd (the jail has none) or "stayed" if the walk was
// stopped (the jails' 0700 base directory, host root's, stops it today).
const chrootEscape = `
if (!chroot("/usr")) { print "jailed: $!\n"; exit 0 }
chdir("..") for 1..64;
chroot(".");
print(-e "/etc/passwd" ? "escaped\n" : "stayed\n");
`

// TestJailNoChrootEscape: a program running in a migration jail as its user namespace's
// root (as rsync does, should a hostile peer take it over) may not call chroot(2), so
// leaving the jail for the host's mount namespace does not rest on the permissions of
// the directories above it alone. Without the capability bounding set chroot(2)
// succeeds. The positive control runs in the same jail and sees the jail's /usr.
func TestJailNoChrootEscape(t *testing.T) {
	requireRoot(t)
	if _, err := os.Stat("/usr/bin/perl"); err != nil {
		t.Fatal("needs /usr/bin/perl")
	}

	base := t.TempDir()
	tree := filepath.Join(base, "tree")
	must(t, os.Mkdir(tree, 0o755))
	ids := idmap.Set{HostUID: 3000000, HostGID: 3000000, Size: 65536}

	j, err := newJail(filepath.Join(base, "jails"))
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(j.close)
	must(t, j.bindTarget(tree, ids))
	must(t, j.bindDevNull())

	run := func(script string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()

		var out bytes.Buffer
		cmd := j.commandOf(ctx, ContainerMapping(ids), "/usr/bin/perl", "-e", script)
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		if err != nil {
			t.Fatalf("perl in the jail: %v (%s)", err, out.String())
		}

		return strings.TrimSpace(out.String())
	}

	if got := run(`print((-x "/usr/bin/rsync" && !-e "/etc/passwd") ? "in the jail\n" : "not in the jail\n")`); got != "in the jail" {
		t.Fatalf("positive control: %q", got)
	}

	got := run(chrootEscape)
	t.Logf("escape attempt: %s", got)
	if !strings.HasPrefix(got, "jailed") {
		t.Fatalf("a program in the jail left the chroot: %q", got)
	}
}
