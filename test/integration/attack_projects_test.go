package integration

import (
	"strings"
	"testing"
)

// TestAttackProjectsRestoreLoosens: a snapshot restore writes the snapshot's config and
// devices back as the instance's. In a restricted project that must be checked against
// the project's restrictions as they are now, or a tenant snapshots a config its project
// allowed once (security.nesting here), the administrator tightens the project, and the
// restore brings the forbidden config back.
func TestAttackProjectsRestoreLoosens(t *testing.T) {
	requireSetup(t)
	d := startDaemon(t)
	l := newLXCRunner(t, d)

	l.must("project", "create", "tp1", "-c", "restricted=true", "-c", "restricted.containers.nesting=allow")
	t.Cleanup(func() {
		_, _ = l.run("delete", "-f", "r1", "--project", "tp1")
		_, _ = l.run("delete", "-f", "r2", "--project", "tp1")
		_, _ = l.run("project", "delete", "tp1")
	})

	l.must("init", "debian/12", "r1", "--project", "tp1", "-c", "security.nesting=true")
	l.must("snapshot", "r1", "s0", "--project", "tp1")
	l.must("config", "unset", "r1", "security.nesting", "--project", "tp1")
	l.must("project", "set", "tp1", "restricted.containers.nesting=block")

	// Positive control: the project now refuses nesting on a direct edit.
	out := l.fails("config", "set", "r1", "security.nesting=true", "--project", "tp1")
	if !strings.Contains(out, "restricted.containers.nesting") {
		t.Fatalf("direct nesting refused with:\n%s", out)
	}

	// A restore of a snapshot without the forbidden key still works.
	l.must("init", "debian/12", "r2", "--project", "tp1")
	l.must("snapshot", "r2", "ok", "--project", "tp1")
	l.must("restore", "r2", "ok", "--project", "tp1")

	// The attack: the restore must be refused, naming the key, and change nothing.
	out, err := l.run("restore", "r1", "s0", "--project", "tp1")
	if err == nil || !strings.Contains(out, "restricted.containers.nesting") {
		t.Errorf("restore of a snapshot with nesting in a project that blocks it: %v\n%s", err, out)
	}

	if v := strings.TrimSpace(l.must("config", "get", "r1", "security.nesting", "--project", "tp1")); v != "" {
		t.Errorf("security.nesting is %q after the refused restore", v)
	}
}
