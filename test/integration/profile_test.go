package integration

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"

	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/test/testutil"
)

// TestProfiles covers profile CRUD with the CLI and the API, the layering of profiles and
// local keys, and a change of the default profile reaching a running container.
func TestProfiles(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	name := uniqueName("prf")
	d.berth("launch", "debian/12", name)

	t.Run("crud", func(t *testing.T) {
		d.berth("profile", "create", "small")
		d.berth("profile", "set", "small", "limits.memory=256MiB", "user.tier=small")
		d.berth("profile", "set", "small", "user.note", "two words")
		show := d.berth("profile", "show", "small")
		for _, want := range []string{"limits.memory: 256MiB", "user.note: two words", "name: small"} {
			if !strings.Contains(show, want) {
				t.Errorf("profile show lacks %q:\n%s", want, show)
			}
		}

		cmd := exec.Command(berthBin, "profile", "edit", "small")
		cmd.Env = append(os.Environ(), "BERTH_DIR="+d.dir)
		cmd.Stdin = strings.NewReader("description: tiny\nconfig:\n  limits.memory: 200MiB\ndevices: {}\n")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("profile edit: %v %s", err, out)
		}

		if got := strings.TrimSpace(d.berth("profile", "get", "small", "limits.memory")); got != "200MiB" {
			t.Fatalf("after edit limits.memory = %q", got)
		}

		d.berth("profile", "copy", "small", "small2")
		d.berth("profile", "rename", "small2", "tiny")
		list := d.berth("profile", "list")
		if !strings.Contains(list, "tiny") || strings.Contains(list, "small2") {
			t.Fatalf("profile list after copy and rename:\n%s", list)
		}

		d.berth("profile", "delete", "tiny")
		out2, err := d.berthErr("profile", "delete", "default")
		if err == nil {
			t.Fatalf("deleting the default profile worked: %s", out2)
		}

		out2, err = d.berthErr("profile", "set", "small", "limits.cpu=lots")
		if err == nil || !strings.Contains(out2, "limits.cpu") {
			t.Fatalf("a bad profile key: %v %s", err, out2)
		}

		out2, err = d.berthErr("profile", "create", "default")
		if err == nil {
			t.Fatalf("creating a second default profile: %s", out2)
		}
	})

	t.Run("etag", func(t *testing.T) {
		code, env, etag := d.rawH("GET", "/1.0/profiles/small", nil, nil)
		if code != 200 || etag == "" {
			t.Fatalf("GET profile: %d etag %q", code, etag)
		}

		p := api.Profile{}
		_ = json.Unmarshal(env.Metadata, &p)
		p.Config["user.etag"] = "1"
		code, env, _ = d.rawH("PUT", "/1.0/profiles/small", p.ProfilePut, map[string]string{"If-Match": `"stale"`})
		if code != 412 {
			t.Fatalf("profile PUT with a stale If-Match: %d %s", code, env.Error)
		}

		code, env, _ = d.rawH("PUT", "/1.0/profiles/small", p.ProfilePut, map[string]string{"If-Match": etag})
		if code != 200 {
			t.Fatalf("profile PUT with its ETag: %d %s", code, env.Error)
		}
	})

	t.Run("layering", func(t *testing.T) {
		d.berth("profile", "create", "second")
		d.berth("profile", "set", "second", "user.tier=second", "user.only=second")
		d.berth("profile", "assign", name, "default,small,second")
		d.berth("config", "set", name, "user.tier=local")
		inst, _, err := d.c.GetInstance(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}

		ec := inst.ExpandedConfig
		if ec["user.tier"] != "local" || ec["user.only"] != "second" || ec["limits.memory"] != "200MiB" || ec["user.note"] != "" {
			t.Fatalf("expanded config = %v", ec)
		}

		if got := d.v1File(t, name, "memory", "memory.limit_in_bytes"); got != "" && got != "209715200" {
			t.Errorf("memory.limit_in_bytes = %s after assigning the small profile", got)
		}

		out, err := d.berthErr("profile", "delete", "second")
		if err == nil {
			t.Fatalf("deleting a profile in use worked: %s", out)
		}

		d.berth("profile", "remove", name, "second")
		d.berth("profile", "remove", name, "small")
		d.berth("profile", "delete", "second")
		if got := d.v1File(t, name, "memory", "memory.limit_in_bytes"); got != "" && got == "209715200" {
			t.Errorf("memory limit stayed after removing the profile")
		}
	})

	t.Run("default-profile-reaches-running", func(t *testing.T) {
		d.berth("profile", "set", "default", "limits.memory=300MiB")
		if got := d.v1File(t, name, "memory", "memory.limit_in_bytes"); got != "" && got != "314572800" {
			t.Fatalf("after changing the default profile, memory.limit_in_bytes = %s", got)
		}

		if haveLXCFS(t) {
			out, err := d.insideCg(name, "free -m | awk '/^Mem:/{print $2}'")
			if err != nil || strings.TrimSpace(out) != "300" {
				t.Errorf("free -m inside = %q %v, want 300", out, err)
			}
		}

		d.berth("profile", "unset", "default", "limits.memory")
		if got := d.v1File(t, name, "memory", "memory.limit_in_bytes"); got != "" && got == "314572800" {
			t.Fatalf("unsetting the default profile's limit left it in place")
		}
	})

	t.Run("stock-lxc", func(t *testing.T) {
		lxcBin := testutil.LookPath(t, "lxc", "Debian package lxd-client")

		conf := t.TempDir()
		lxc := func(stdin string, args ...string) string {
			t.Helper()
			cmd := exec.Command(lxcBin, args...)
			cmd.Env = append(os.Environ(), "LXD_DIR="+d.dir, "LXD_CONF="+conf)
			if stdin != "" {
				cmd.Stdin = strings.NewReader(stdin)
			}

			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("lxc %s: %v\n%s", strings.Join(args, " "), err, out)
			}

			return string(out)
		}

		_, _ = exec.Command(lxcBin, "list").CombinedOutput() // first run prints a welcome hint
		lxc("", "list")
		lxc("", "config", "set", name, "limits.memory=256MiB")
		if got := strings.TrimSpace(lxc("", "config", "get", name, "limits.memory")); got != "256MiB" {
			t.Fatalf("lxc config get = %q", got)
		}

		if got := d.v1File(t, name, "memory", "memory.limit_in_bytes"); got != "" && got != "268435456" {
			t.Errorf("after lxc config set, memory.limit_in_bytes = %s", got)
		}

		share := t.TempDir()
		lxc("", "config", "device", "add", name, "data", "disk", "source="+share, "path=/srv/data", "shift=true")
		if !strings.Contains(lxc("", "config", "show", name), "/srv/data") {
			t.Errorf("lxc config show lacks the new device")
		}

		out, err := d.inside(name, "findmnt", "-n", "/srv/data")
		if err != nil || !strings.Contains(out, "idmapped") {
			t.Errorf("the device added by lxc is not mounted idmapped inside: %v %s", err, out)
		}

		show := lxc("", "profile", "show", "default")
		if !strings.Contains(show, "name: default") || !strings.Contains(show, "/1.0/instances/"+name) {
			t.Errorf("lxc profile show default:\n%s", show)
		}

		lxc("", "profile", "create", "fromlxc")
		lxc("config:\n  user.via: lxc\ndescription: edited by lxc\ndevices: {}\n", "profile", "edit", "fromlxc")
		if !strings.Contains(lxc("", "profile", "show", "fromlxc"), "user.via: lxc") {
			t.Errorf("lxc profile edit did not stick")
		}

		lxc("", "profile", "delete", "fromlxc")
		lxc("", "config", "device", "remove", name, "data")
		lxc("", "config", "unset", name, "limits.memory")
	})
}
