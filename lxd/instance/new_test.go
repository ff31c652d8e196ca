package instance

import (
	"testing"

	"github.com/berth-dev/berth/lxd/idmap"
)

// TestIdentityKeys checks the keys the creation pipeline writes: a new instance gets a
// new uuid whatever its config brings, an arriving one keeps its own, and both get the
// id range of this server and keep their base image.
func TestIdentityKeys(t *testing.T) {
	ids := idmap.Set{HostUID: 1065536, HostGID: 1065536, Size: idmap.DefaultSize}
	config := map[string]string{"volatile.uuid": "brought", "volatile.base_image": "abc", "volatile.idmap.base": "0"}

	fresh := identityKeys(config, NewIdentity, ids)
	if fresh["volatile.uuid"] == "brought" || len(fresh["volatile.uuid"]) != 36 {
		t.Errorf("new identity kept or lacks a uuid: %q", fresh["volatile.uuid"])
	}

	kept := identityKeys(config, KeepIdentity, ids)
	if kept["volatile.uuid"] != "brought" {
		t.Errorf("kept identity: uuid %q", kept["volatile.uuid"])
	}

	if none := identityKeys(map[string]string{}, KeepIdentity, ids); len(none["volatile.uuid"]) != 36 {
		t.Errorf("kept identity without a uuid got %q", none["volatile.uuid"])
	}

	for _, got := range []map[string]string{fresh, kept} {
		if got["volatile.idmap.base"] != "1065536" || got["volatile.base_image"] != "abc" ||
			got["volatile.idmap.next"] != idmapJSON(ids) || got["volatile.last_state.idmap"] != idmapJSON(ids) {
			t.Errorf("identity keys %v", got)
		}
	}
}
