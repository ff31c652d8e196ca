package instance

import (
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"github.com/berth-dev/berth/lxd/storage"
	"github.com/berth-dev/berth/shared/api"
)

// quotaPool is a storage.Driver whose only answer is RootQuota's.
type quotaPool struct {
	storage.Driver
	err   error
	asked []string
}

func (p *quotaPool) RootQuota(name string) error {
	p.asked = append(p.asked, name)
	return p.err
}

func root(size string) map[string]map[string]string {
	d := map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": "default"}}
	if size != "" {
		d["root"]["size"] = size
	}

	return d
}

func onPool(d map[string]map[string]string, pool string) map[string]map[string]string {
	d["root"]["pool"] = pool
	return d
}

func TestCheckRootSize(t *testing.T) {
	noQuota := &storage.QuotaError{Driver: "overlay", FS: "ext4", Dir: "/var/lib/berth/storage-pools/default", Reason: "ext4 has no per-instance quota"}
	for _, c := range []struct {
		name     string
		old, new map[string]map[string]string
		pool     error
		wantErr  string // "" for none
		wantAsk  bool
	}{
		{name: "new without size", new: root(""), pool: noQuota},
		{name: "new with size refused", new: root("2GiB"), pool: noQuota, wantAsk: true,
			wantErr: "pool default (overlay on ext4 at /var/lib/berth/storage-pools/default) cannot enforce a root disk size: ext4 has no per-instance quota"},
		{name: "new with size accepted", new: root("2GiB"), wantAsk: true},
		{name: "size kept from before", old: root("2GiB"), new: root("2GiB"), pool: noQuota},
		{name: "size changed refused", old: root("2GiB"), new: root("3GiB"), pool: noQuota, wantAsk: true, wantErr: "cannot enforce"},
		{name: "size removed", old: root("2GiB"), new: root(""), pool: noQuota},
		{name: "unknown pool refused", new: onPool(root(""), "nowhere"), wantErr: `root disk: storage pool "nowhere" does not exist`},
		{name: "other pool accepted", new: onPool(root(""), "fast")},
		{name: "other pool kept from before", old: onPool(root(""), "fast"), new: onPool(root(""), "fast")},
		{name: "pool change refused", old: root(""), new: onPool(root(""), "fast"), wantErr: `the root disk's pool cannot change from "default" to "fast"`},
		{name: "pool change by dropping the root disk refused", old: onPool(root(""), "fast"), new: map[string]map[string]string{},
			wantErr: `cannot change from "fast" to "default"`},
		{name: "other error passes", new: root("1GiB"), pool: errors.New("statfs failed"), wantAsk: true, wantErr: "statfs failed"},
	} {
		t.Run(c.name, func(t *testing.T) {
			pool := &quotaPool{err: c.pool}
			m := NewManager(Config{Pools: fakePools{"default": pool, "fast": pool}, PoolName: "default", Log: slog.New(slog.DiscardHandler)})
			err := m.conf.checkRootSize("c1", c.old, c.new)
			if (len(pool.asked) > 0) != c.wantAsk {
				t.Errorf("pool asked %v, want asked %v", pool.asked, c.wantAsk)
			}

			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("err = %v", err)
				}

				return
			}

			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("err = %v, want %q", err, c.wantErr)
			}

			var qe *storage.QuotaError
			if errors.As(c.pool, &qe) && !api.StatusErrorCheck(err, http.StatusBadRequest) {
				t.Errorf("err %v is not a 400", err)
			}
		})
	}
}

func TestRootSizeValidation(t *testing.T) {
	for size, ok := range map[string]bool{"": true, "64MiB": true, "2GB": true, "1048576": true, "0": false, "-1GiB": false, "lots": false, "2 GiB": false} {
		err := ValidateDevices(root(size))
		if (err == nil) != ok {
			t.Errorf("size %q: err = %v, want ok %v", size, err, ok)
		}
	}
}

func TestWithoutRootSize(t *testing.T) {
	old := root("1GiB")
	old["data"] = map[string]string{"type": "disk", "path": "/srv", "source": "/srv", "size": "x"}
	got := withoutRootSize(old)
	if _, ok := got["root"]["size"]; ok {
		t.Error("root size kept")
	}

	if old["root"]["size"] != "1GiB" || got["data"]["size"] != "x" {
		t.Error("withoutRootSize changed its input or another device")
	}

	// A live size change is not a device change that needs a restart.
	err := checkHotplug(root("1GiB"), root("2GiB"))
	if err != nil {
		t.Errorf("checkHotplug of a size change: %v", err)
	}

	// Unsetting it (an empty value) neither.
	err = checkHotplug(root("1GiB"), map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": "default", "size": ""}})
	if err != nil {
		t.Errorf("checkHotplug of a size unset: %v", err)
	}

	err = checkHotplug(root("1GiB"), map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": "other"}})
	if err == nil {
		t.Error("checkHotplug let another root disk change through")
	}
}
