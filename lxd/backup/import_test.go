package backup

import (
	"net/http"
	"strings"
	"testing"

	"github.com/berth-dev/berth/shared/api"
)

func TestValidateImported(t *testing.T) {
	root := map[string]string{"type": "disk", "path": "/", "pool": "default"}
	index := func(config map[string]string, devices map[string]map[string]string) *Index {
		i := &Index{}
		i.Config.Container = &api.Instance{InstancePut: api.InstancePut{Config: config, Devices: devices}}
		return i
	}

	ok := index(map[string]string{"user.x": "1", "volatile.uuid": "dropped"}, map[string]map[string]string{
		"root": root,
		"eth0": {"type": "nic", "network": "berthbr0", "name": "eth0"},
		"gone": {"type": "none"},
	})
	if err := validateImported(ok); err != nil {
		t.Fatalf("a clean backup refused: %v", err)
	}

	for _, c := range []struct {
		i    *Index
		want string
	}{
		{index(nil, map[string]map[string]string{"h": {"type": "disk", "source": "/", "path": "/h"}}), `device "h" (disk) shares a host path`},
		{index(nil, map[string]map[string]string{"c": {"type": "unix-char", "path": "/dev/kmsg"}}), "host device node"},
		{index(nil, map[string]map[string]string{"p": {"type": "proxy", "listen": "tcp:0.0.0.0:1", "connect": "tcp:127.0.0.1:1"}}), "host socket"},
		{index(nil, map[string]map[string]string{"n": {"type": "nic", "nictype": "physical", "parent": "eth0"}}), "host interface"},
		{index(nil, map[string]map[string]string{"x": {"type": "gpu"}}), "unknown type"},
		{index(map[string]string{"raw.lxc": "x"}, nil), `"raw.lxc"`},
		{index(map[string]string{"raw.idmap": "both 0 0"}, nil), "raw.idmap"},
	} {
		err := validateImported(c.i)
		if err == nil || !strings.Contains(err.Error(), c.want) || !api.StatusErrorCheck(err, http.StatusBadRequest) {
			t.Errorf("want a 400 with %q, got %v", c.want, err)
		}
	}

	snap := index(nil, map[string]map[string]string{"root": root})
	snap.Config.Snapshots = []api.InstanceSnapshot{{Name: "s0", Devices: map[string]map[string]string{"h": {"type": "disk", "source": "/etc", "path": "/h"}}}}
	if err := validateImported(snap); err == nil || !strings.Contains(err.Error(), `snapshot "s0"`) {
		t.Errorf("a snapshot's host disk: %v", err)
	}
}
