package projects

import (
	"net/http"
	"strings"
	"testing"

	"github.com/berth-dev/berth/shared/api"
)

func wantStatus(t *testing.T, err error, code int, contains string) {
	t.Helper()
	if !api.StatusErrorCheck(err, code) {
		t.Fatalf("error = %v, want status %d", err, code)
	}

	if !strings.Contains(err.Error(), contains) {
		t.Fatalf("error %q does not name %q", err, contains)
	}
}

func TestValidateConfig(t *testing.T) {
	good := []map[string]string{
		{"limits.instances": "2", "limits.memory": "2GiB", "limits.cpu": "4", "limits.disk": "10GiB", "limits.processes": "1000"},
		{"restricted": "true", "restricted.devices.disk": "allow", "restricted.devices.disk.paths": "/srv,/data"},
		{"features.profiles": "false", "user.team": "a"},
		{"features.profiles": "true"},
		{"features.images": "true"},
		{"features.images": "false"},
	}

	for _, cfg := range good {
		if err := ValidateConfig(cfg, false); err != nil {
			t.Errorf("ValidateConfig(%v): %v", cfg, err)
		}
	}

	bad := map[string]map[string]string{
		"limits.instances":        {"limits.instances": "-1"},
		"limits.memory":           {"limits.memory": "lots"},
		"nonsense":                {"nonsense": "1"},
		"restricted.devices.disk": {"restricted.devices.disk": "maybe"},
		"features.networks":       {"features.networks": "true"}, // not built
	}

	for key, cfg := range bad {
		wantStatus(t, ValidateConfig(cfg, false), http.StatusBadRequest, key)
	}

	wantStatus(t, ValidateConfig(map[string]string{"features.images": "false"}, true), http.StatusBadRequest, "features.images")
}

func TestCheckLimits(t *testing.T) {
	uses := []Use{
		{Name: "a", Config: map[string]string{"limits.cpu": "2", "limits.memory": "1GiB", "limits.processes": "100"}, RootSize: 1 << 30},
		{Name: "b", Config: map[string]string{"limits.cpu": "0-1", "limits.memory": "1GiB", "limits.processes": "100"}, RootSize: 1 << 30},
	}

	err := Check("p1", map[string]string{"limits.instances": "2", "limits.cpu": "4", "limits.memory": "2GiB", "limits.processes": "200", "limits.disk": "2GiB"}, uses)
	if err != nil {
		t.Fatalf("at the limits: %v", err)
	}

	wantStatus(t, Check("p1", map[string]string{"limits.instances": "1"}, uses), http.StatusBadRequest, "limits.instances=1")
	wantStatus(t, Check("p1", map[string]string{"limits.containers": "1"}, uses), http.StatusBadRequest, "limits.containers=1")
	wantStatus(t, Check("p1", map[string]string{"limits.cpu": "3"}, uses), http.StatusBadRequest, "limits.cpu=3")
	wantStatus(t, Check("p1", map[string]string{"limits.memory": "1GiB"}, uses), http.StatusBadRequest, "limits.memory=1GiB")
	wantStatus(t, Check("p1", map[string]string{"limits.processes": "199"}, uses), http.StatusBadRequest, "limits.processes=199")
	wantStatus(t, Check("p1", map[string]string{"limits.disk": "1GiB"}, uses), http.StatusBadRequest, "limits.disk=1GiB")

	// An instance without the key its project limits is refused, naming both.
	unset := []Use{{Name: "c", Config: map[string]string{}, RootSize: -1}}
	wantStatus(t, Check("p1", map[string]string{"limits.memory": "1GiB"}, unset), http.StatusBadRequest, `"c" sets no limits.memory`)
	wantStatus(t, Check("p1", map[string]string{"limits.disk": "1GiB"}, unset), http.StatusBadRequest, "root disk size")

	// Without limits nothing is refused, whatever the instances set.
	pct := []Use{{Name: "d", Config: map[string]string{"limits.memory": "50%"}, RootSize: -1}}
	if err := Check("p1", map[string]string{}, pct); err != nil {
		t.Fatalf("no limits: %v", err)
	}

	wantStatus(t, Check("p1", map[string]string{"limits.memory": "1GiB"}, pct), http.StatusBadRequest, "percentage")

	tally, err := Tally(map[string]string{"limits.instances": "5"}, uses)
	if err != nil {
		t.Fatal(err)
	}

	if tally["instances"] != (Resource{Limit: 5, Usage: 2}) || tally["cpu"] != (Resource{Limit: -1, Usage: 4}) {
		t.Fatalf("tally = %+v", tally)
	}
}

func TestCheckRestrictions(t *testing.T) {
	root := map[string]string{"type": "disk", "path": "/", "pool": "default"}
	devs := func(extra map[string]string) map[string]map[string]string {
		d := map[string]map[string]string{"root": root}
		if extra != nil {
			d["x"] = extra
		}

		return d
	}

	open := map[string]string{}
	hostDisk := map[string]string{"type": "disk", "source": "/srv/data", "path": "/mnt"}
	if err := CheckRestrictions("p1", open, nil, devs(hostDisk)); err != nil {
		t.Fatalf("unrestricted project refused a host disk: %v", err)
	}

	r := map[string]string{"restricted": "true"}
	if err := CheckRestrictions("p1", r, map[string]string{}, devs(nil)); err != nil {
		t.Fatalf("restricted project refused a plain instance: %v", err)
	}

	wantStatus(t, CheckRestrictions("p1", r, nil, devs(hostDisk)), http.StatusForbidden, "restricted.devices.disk")
	wantStatus(t, CheckRestrictions("p1", r, nil, devs(map[string]string{"type": "unix-char", "path": "/dev/kmsg"})), http.StatusForbidden, "restricted.devices.unix-char")
	wantStatus(t, CheckRestrictions("p1", r, nil, devs(map[string]string{"type": "proxy", "listen": "tcp:0.0.0.0:80", "connect": "tcp:127.0.0.1:80"})), http.StatusForbidden, "restricted.devices.proxy")
	wantStatus(t, CheckRestrictions("p1", r, nil, devs(map[string]string{"type": "nic", "nictype": "bridged", "parent": "br0"})), http.StatusForbidden, "restricted.devices.nic")
	wantStatus(t, CheckRestrictions("p1", r, map[string]string{"security.nesting": "true"}, devs(nil)), http.StatusForbidden, "restricted.containers.nesting")
	wantStatus(t, CheckRestrictions("p1", r, map[string]string{"security.syscalls.deny_default": "false"}, devs(nil)), http.StatusForbidden, "restricted.containers.lowlevel")
	if err := CheckRestrictions("p1", r, nil, devs(map[string]string{"type": "nic", "network": "berthbr0"})); err != nil {
		t.Fatalf("managed NIC refused: %v", err)
	}

	paths := map[string]string{"restricted": "true", "restricted.devices.disk": "allow", "restricted.devices.disk.paths": "/srv"}
	if err := CheckRestrictions("p1", paths, nil, devs(hostDisk)); err != nil {
		t.Fatalf("disk under an allowed path refused: %v", err)
	}

	for _, src := range []string{"/etc", "/srv/../etc", "/srvx"} {
		d := map[string]string{"type": "disk", "source": src, "path": "/mnt"}
		wantStatus(t, CheckRestrictions("p1", paths, nil, devs(d)), http.StatusForbidden, "restricted.devices.disk.paths")
	}
}

// TestVolumesCountAgainstDisk: a project's custom volumes count against limits.disk by
// their size, and against nothing else; a volume without a size in a project that
// limits disk is a 400 naming it.
func TestVolumesCountAgainstDisk(t *testing.T) {
	cfg := map[string]string{"limits.disk": "4GiB", "limits.instances": "1", "limits.memory": "1GiB"}
	uses := []Use{
		{Name: "c1", Config: map[string]string{"limits.memory": "1GiB"}, RootSize: 1 << 30},
		{Name: "default/data", RootSize: 2 << 30, Volume: true},
	}

	res, err := Tally(cfg, uses)
	if err != nil {
		t.Fatal(err)
	}

	if res["disk"].Usage != 3<<30 || res["instances"].Usage != 1 || res["memory"].Usage != 1<<30 {
		t.Errorf("tally = %+v", res)
	}

	over := append(uses, Use{Name: "default/big", RootSize: 2 << 30, Volume: true})
	wantStatus(t, Check("p", cfg, over), http.StatusBadRequest, "limits.disk")

	unsized := append(uses, Use{Name: "default/nosize", RootSize: -1, Volume: true})
	wantStatus(t, Check("p", cfg, unsized), http.StatusBadRequest, "default/nosize")
}
