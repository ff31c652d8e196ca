package instance

import (
	"net/http"
	"testing"

	"github.com/berth-dev/berth/lxd/storage"
	"github.com/berth-dev/berth/shared/api"
)

// fakePools is Pools over a fixed set of drivers; a name it lacks is a 404.
type fakePools map[string]storage.Driver

func (f fakePools) Driver(name string) (storage.Driver, error) {
	d, ok := f[name]
	if !ok {
		return nil, api.StatusErrorf(http.StatusNotFound, "storage pool %q not found", name)
	}

	return d, nil
}

func (f fakePools) Drivers() map[string]storage.Driver { return f }

// namedPool is a driver that only says which pool it is.
type namedPool struct {
	storage.Driver
	name string
}

// TestPoolOf: an instance lives on its expanded root disk's pool, on the default pool
// when the root disk names none or there is no root disk, and an unknown pool is an error
// that keeps its 404.
func TestPoolOf(t *testing.T) {
	def, fast := &namedPool{name: "default"}, &namedPool{name: "fast"}
	ps := poolSet{pools: fakePools{"default": def, "fast": fast}, def: "default"}
	for _, c := range []struct {
		name    string
		devices map[string]map[string]string
		want    string
	}{
		{"root on fast", map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": "fast"}}, "fast"},
		{"root on default", map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": "default"}}, "default"},
		{"root without pool", map[string]map[string]string{"root": {"type": "disk", "path": "/"}}, "default"},
		{"no root disk", map[string]map[string]string{"data": {"type": "disk", "path": "/srv", "pool": "fast", "source": "v"}}, "default"},
		{"nothing", nil, "default"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := ps.nameOf(c.devices); got != c.want {
				t.Fatalf("nameOf = %q, want %q", got, c.want)
			}

			drv, err := ps.of(c.devices)
			if err != nil {
				t.Fatal(err)
			}

			if got := drv.(*namedPool).name; got != c.want {
				t.Fatalf("of = pool %q, want %q", got, c.want)
			}
		})
	}

	_, err := ps.of(map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": "gone"}})
	if !api.StatusErrorCheck(err, http.StatusNotFound) {
		t.Fatalf("unknown pool: err = %v, want a 404", err)
	}
}

// TestRootOnPool: a snapshot copied to another pool gets the destination on its own root
// disk, or the copy's root disk when it had none, and its other devices stay as they were.
func TestRootOnPool(t *testing.T) {
	expanded := map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": "fast", "size": "1GiB"}}
	own := map[string]map[string]string{
		"root": {"type": "disk", "path": "/", "pool": "default"},
		"eth0": {"type": "nic", "network": "berthbr0"},
	}

	got := rootOnPool(own, expanded, "fast")
	if got["root"]["pool"] != "fast" || got["eth0"]["network"] != "berthbr0" || own["root"]["pool"] != "default" {
		t.Fatalf("own root disk: got %v (input now %v)", got, own)
	}

	got = rootOnPool(map[string]map[string]string{}, expanded, "fast")
	if got["root"]["pool"] != "fast" || got["root"]["size"] != "1GiB" {
		t.Fatalf("root disk from a profile: got %v", got)
	}
}
