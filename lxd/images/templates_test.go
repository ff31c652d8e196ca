package images

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/shared/api"
)

// templateFixture makes a rootfs and a metaDir holding the given template files.
func templateFixture(t *testing.T, files map[string]string) (rootfs, metaDir string) {
	t.Helper()

	base := t.TempDir()
	rootfs = filepath.Join(base, "rootfs")
	metaDir = filepath.Join(base, "meta")

	for _, d := range []string{filepath.Join(rootfs, "etc"), filepath.Join(metaDir, "templates")} {
		err := os.MkdirAll(d, 0o755)
		if err != nil {
			t.Fatal(err)
		}
	}

	for name, body := range files {
		err := os.WriteFile(filepath.Join(metaDir, "templates", name), []byte(body), 0o644)
		if err != nil {
			t.Fatal(err)
		}
	}

	return rootfs, metaDir
}

func readString(t *testing.T, p string) string {
	t.Helper()

	data, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}

	return string(data)
}

var testContext = TemplateContext{
	Name:         "c1",
	Architecture: "x86_64",
	Config:       map[string]string{"user.greeting": "hello <b>&\r\n", "limits.cpu": "2"},
	Devices:      map[string]map[string]string{"eth0": {"type": "nic", "network": "berthbr0"}},
}

func TestRenderTemplates(t *testing.T) {
	uid, gid := os.Geteuid(), os.Getegid()
	if uid == 0 {
		uid, gid = 1000000, 1000000 // a container root's host ids
	}

	rootfs, metaDir := templateFixture(t, map[string]string{
		"hostname.tpl": "{{ instance.name }}\n",
		"all.tpl": "{{ trigger }} {{ path }} {{ container.name }} {{ instance.type }} {{ instance.ephemeral }} " +
			"{{ config_get(\"user.greeting\", \"none\") }}|{{ config_get(\"user.missing\", \"none\") }}|" +
			"{{ config[\"limits.cpu\"] }} {{ devices.eth0.network }} {{ properties.who }}" +
			"{% include \"part.tpl\" %}",
		"part.tpl":  " [part]",
		"start.tpl": "only at start",
	})

	meta := &api.ImageMetadata{Templates: map[string]*api.ImageMetadataTemplate{
		"/etc/hostname":         {When: []string{"create", "copy"}, Template: "hostname.tpl"},
		"/opt/new/dir/all":      {When: []string{"create"}, Template: "all.tpl", Properties: map[string]string{"who": "me"}},
		"/etc/started":          {When: []string{"start"}, Template: "start.tpl"},
		"/etc/keep":             {When: []string{"create"}, Template: "hostname.tpl", CreateOnly: true},
		"/etc/created-only-new": {When: []string{"create"}, Template: "hostname.tpl", CreateOnly: true},
	}}

	err := os.WriteFile(filepath.Join(rootfs, "etc/hostname"), []byte("a much longer placeholder\n"), 0o600)
	if err != nil {
		t.Fatal(err)
	}

	err = os.WriteFile(filepath.Join(rootfs, "etc/keep"), []byte("mine"), 0o644)
	if err != nil {
		t.Fatal(err)
	}

	err = RenderTemplates(rootfs, metaDir, meta, TriggerCreate, testContext, int64(uid), int64(gid))
	if err != nil {
		t.Fatal(err)
	}

	if got := readString(t, filepath.Join(rootfs, "etc/hostname")); got != "c1\n" {
		t.Errorf("hostname = %q (existing file must be truncated)", got)
	}

	want := "create /opt/new/dir/all c1 container false hello <b>&|none|2 berthbr0 me [part]"
	if got := readString(t, filepath.Join(rootfs, "opt/new/dir/all")); got != want {
		t.Errorf("all = %q\n want %q", got, want)
	}

	if got := readString(t, filepath.Join(rootfs, "etc/keep")); got != "mine" {
		t.Errorf("create_only overwrote an existing file: %q", got)
	}

	if got := readString(t, filepath.Join(rootfs, "etc/created-only-new")); got != "c1\n" {
		t.Errorf("create_only did not create a missing file: %q", got)
	}

	_, err = os.Stat(filepath.Join(rootfs, "etc/started"))
	if err == nil {
		t.Error("start template ran on create")
	}

	for p, mode := range map[string]uint32{"opt": 0o755, "opt/new/dir": 0o755, "opt/new/dir/all": 0o644} {
		var st unix.Stat_t

		err := unix.Lstat(filepath.Join(rootfs, p), &st)
		if err != nil {
			t.Fatal(err)
		}

		if st.Mode&0o7777 != mode || int(st.Uid) != uid || int(st.Gid) != gid {
			t.Errorf("%s: mode %o owner %d:%d, want %o %d:%d", p, st.Mode&0o7777, st.Uid, st.Gid, mode, uid, gid)
		}
	}

	var st unix.Stat_t

	_ = unix.Lstat(filepath.Join(rootfs, "etc/hostname"), &st)
	if st.Mode&0o777 != 0o600 || int(st.Uid) != os.Geteuid() {
		t.Errorf("existing file's mode/owner changed: %o %d", st.Mode&0o777, st.Uid)
	}

	err = RenderTemplates(rootfs, metaDir, meta, TriggerStart, testContext, int64(uid), int64(gid))
	if err != nil {
		t.Fatal(err)
	}

	if got := readString(t, filepath.Join(rootfs, "etc/started")); got != "only at start" {
		t.Errorf("started = %q", got)
	}
}

func TestRenderTemplatesSymlinkAttack(t *testing.T) {
	outside := t.TempDir()
	victim := filepath.Join(outside, "shadow")

	err := os.WriteFile(victim, []byte("host secret"), 0o600)
	if err != nil {
		t.Fatal(err)
	}

	meta := &api.ImageMetadata{Templates: map[string]*api.ImageMetadataTemplate{
		"/etc/hostname": {When: []string{"create"}, Template: "hostname.tpl"},
	}}

	// 1. /etc/hostname -> <host file>: resolved inside the container root, where it does
	// not exist: refused, the host file untouched.
	rootfs, metaDir := templateFixture(t, map[string]string{"hostname.tpl": "pwned"})

	err = os.Symlink(victim, filepath.Join(rootfs, "etc/hostname"))
	if err != nil {
		t.Fatal(err)
	}

	err = RenderTemplates(rootfs, metaDir, meta, TriggerCreate, testContext, int64(os.Geteuid()), int64(os.Getegid()))
	if err == nil {
		t.Error("rendering through a dangling in-root symlink succeeded")
	}

	if got := readString(t, victim); got != "host secret" {
		t.Fatalf("host file was overwritten: %q", got)
	}

	// 2. The same path also exists inside the root: the container's copy is written.
	inside := filepath.Join(rootfs, victim)

	err = os.MkdirAll(filepath.Dir(inside), 0o755)
	if err == nil {
		err = os.WriteFile(inside, []byte("container file"), 0o644)
	}

	if err != nil {
		t.Fatal(err)
	}

	err = RenderTemplates(rootfs, metaDir, meta, TriggerCreate, testContext, int64(os.Geteuid()), int64(os.Getegid()))
	if err != nil {
		t.Fatal(err)
	}

	if got := readString(t, inside); got != "pwned" {
		t.Errorf("in-root target = %q", got)
	}

	if got := readString(t, victim); got != "host secret" {
		t.Fatalf("host file was overwritten: %q", got)
	}

	// 3. A parent directory symlinked to a host directory: refused while the directory
	// does not exist inside the root, then written inside the root once it does.
	rootfs, metaDir = templateFixture(t, map[string]string{"hostname.tpl": "pwned"})

	err = os.RemoveAll(filepath.Join(rootfs, "etc"))
	if err == nil {
		err = os.Symlink(outside, filepath.Join(rootfs, "etc"))
	}

	if err != nil {
		t.Fatal(err)
	}

	err = RenderTemplates(rootfs, metaDir, meta, TriggerCreate, testContext, int64(os.Geteuid()), int64(os.Getegid()))
	if err == nil {
		t.Error("rendering through a dangling in-root parent symlink succeeded")
	}

	err = os.MkdirAll(filepath.Join(rootfs, outside), 0o755)
	if err != nil {
		t.Fatal(err)
	}

	err = RenderTemplates(rootfs, metaDir, meta, TriggerCreate, testContext, int64(os.Geteuid()), int64(os.Getegid()))
	if err != nil {
		t.Fatal(err)
	}

	entries, _ := os.ReadDir(outside)
	if len(entries) != 1 {
		t.Fatalf("host directory was written to: %v", entries)
	}

	if got := readString(t, filepath.Join(rootfs, outside, "hostname")); got != "pwned" {
		t.Errorf("contained hostname = %q", got)
	}

	// 4. A fifo at the target must not hang the daemon.
	rootfs, metaDir = templateFixture(t, map[string]string{"hostname.tpl": "x"})

	err = unix.Mkfifo(filepath.Join(rootfs, "etc/hostname"), 0o644)
	if err != nil {
		t.Fatal(err)
	}

	err = RenderTemplates(rootfs, metaDir, meta, TriggerCreate, testContext, int64(os.Geteuid()), int64(os.Getegid()))
	if err == nil {
		t.Error("rendering into a fifo succeeded")
	}
}

func TestRenderTemplatesConfinesIncludes(t *testing.T) {
	outside := t.TempDir()
	secret := filepath.Join(outside, "secret")

	err := os.WriteFile(secret, []byte("host secret"), 0o600)
	if err != nil {
		t.Fatal(err)
	}

	rel, err := filepath.Rel("/", secret)
	if err != nil {
		t.Fatal(err)
	}

	for name, body := range map[string]string{
		"include absolute": `{% include "` + secret + `" %}`,
		"include dotdot":   `{% include "../../../../../../../../` + rel + `" %}`,
		"ssi":              `{% ssi "` + secret + `" %}`,
		"import":           `{% import "` + secret + `" x %}`,
		"extends":          `{% extends "` + secret + `" %}`,
	} {
		t.Run(name, func(t *testing.T) {
			rootfs, metaDir := templateFixture(t, map[string]string{"t.tpl": body})
			meta := &api.ImageMetadata{Templates: map[string]*api.ImageMetadataTemplate{
				"/etc/out": {When: []string{"create"}, Template: "t.tpl"},
			}}

			err := RenderTemplates(rootfs, metaDir, meta, TriggerCreate, testContext, int64(os.Geteuid()), int64(os.Getegid()))
			out, _ := os.ReadFile(filepath.Join(rootfs, "etc/out"))
			if strings.Contains(string(out), "host secret") {
				t.Fatalf("template read a host file: %q", out)
			}

			if err == nil {
				t.Fatalf("rendering succeeded: %q", out)
			}
		})
	}
}
