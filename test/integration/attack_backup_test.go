package integration

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/berth-dev/berth/lxd/backup"
	"github.com/berth-dev/berth/shared/api"
)

// backupTarball writes a small but complete backup (index, metadata, a rootfs of one
// file) whose instance has config and devices, plus snapshot snap0 with snapDevices.
func backupTarball(t *testing.T, dir, name string, config map[string]string, devices, snapDevices map[string]map[string]string) string {
	t.Helper()
	index := backup.Index{Name: name, Backend: "dir", Pool: "default"}
	index.Config.Container = &api.Instance{Name: name, InstancePut: api.InstancePut{Architecture: "x86_64", Config: config, Devices: devices, Profiles: []string{"default"}}}
	if snapDevices != nil {
		index.Snapshots = []string{"snap0"}
		index.Config.Snapshots = []api.InstanceSnapshot{{Name: "snap0", Architecture: "x86_64", Config: map[string]string{}, Devices: snapDevices}}
	}

	idx, err := yaml.Marshal(&index)
	if err != nil {
		t.Fatal(err)
	}

	p := filepath.Join(dir, name+".tar.gz")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}

	defer f.Close()
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	now := time.Now()
	add := func(n string, typ byte, data string) {
		mode := int64(0o644)
		if typ == tar.TypeDir {
			mode = 0o755
		}

		err := tw.WriteHeader(&tar.Header{Name: n, Typeflag: typ, Mode: mode, Size: int64(len(data)), ModTime: now})
		if err == nil {
			_, err = tw.Write([]byte(data))
		}

		if err != nil {
			t.Fatal(err)
		}
	}

	add("backup/index.yaml", tar.TypeReg, string(idx))
	add("backup/container/metadata.yaml", tar.TypeReg, "architecture: x86_64\ncreation_date: 1700000000\n")
	for _, root := range []string{"backup/container/rootfs/", "backup/snapshots/snap0/rootfs/"} {
		if root != "backup/container/rootfs/" && snapDevices == nil {
			continue
		}

		add(root, tar.TypeDir, "")
		add(root+"etc/", tar.TypeDir, "")
		add(root+"etc/hostname", tar.TypeReg, name+"\n")
	}

	if tw.Close() != nil || gz.Close() != nil {
		t.Fatal("writing backup")
	}

	return p
}

// stateListing lists what the daemon keeps per instance: its directory, its storage and
// the backups area, two levels deep.
func stateListing(t *testing.T, d *daemon) []string {
	t.Helper()
	var out []string
	for _, pat := range []string{"instances/*", "storage-pools/*/*", "storage-pools/*/*/*", "backups/*", "backups/*/*", "shmounts/*"} {
		m, _ := filepath.Glob(filepath.Join(d.dir, pat))
		out = append(out, m...)
	}

	slices.Sort(out)
	return out
}

// TestAttackBackup imports backups that bring host-reaching devices or forbidden config:
// each is refused with the device or key named, and leaves no instance row, no storage
// and no files. The same backup without the bad part imports (positive control).
func TestAttackBackup(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	dir := t.TempDir()
	root := map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": "default"}}
	with := func(name string, dev map[string]string) map[string]map[string]string {
		out := map[string]map[string]string{"root": root["root"]}
		out[name] = dev
		return out
	}

	// Positive control: a clean backup imports, so the refusals below are about their
	// bad part and not a broken tarball.
	okName := uniqueName("bkok")
	out, err := d.berthErr("import", backupTarball(t, dir, okName, map[string]string{"user.x": "1"}, root, nil))
	if err != nil {
		t.Fatalf("control: a clean backup does not import: %v\n%s", err, out)
	}

	names, _ := d.c.GetInstanceNames(context.Background())
	if !slices.Contains(names, okName) {
		t.Fatalf("control: the clean import made no instance: %v", names)
	}

	d.berth("delete", okName)

	for _, c := range []struct {
		name        string
		config      map[string]string
		devices     map[string]map[string]string
		snapDevices map[string]map[string]string
		want        string
	}{
		{"bkdisk", nil, with("host", map[string]string{"type": "disk", "source": "/", "path": "/mnt/host"}), nil, `"host" (disk) shares a host path`},
		{"bkdisk2", nil, with("etc", map[string]string{"type": "disk", "source": "/etc", "path": "/mnt/etc", "readonly": "true"}), nil, `"etc" (disk) shares a host path`},
		{"bkchar", nil, with("kmsg", map[string]string{"type": "unix-char", "source": "/dev/kmsg"}), nil, `"kmsg" (unix-char) gives a host device node`},
		{"bkblock", nil, with("sda", map[string]string{"type": "unix-block", "source": "/dev/vda"}), nil, `"sda" (unix-block) gives a host device node`},
		{"bkproxy", nil, with("p", map[string]string{"type": "proxy", "listen": "tcp:0.0.0.0:22", "connect": "tcp:127.0.0.1:22"}), nil, `"p" (proxy) opens a host socket`},
		{"bknic", nil, with("eth9", map[string]string{"type": "nic", "nictype": "bridged", "parent": "lo"}), nil, `"eth9" (nic) attaches to a host interface`},
		{"bksnap", nil, root, with("host", map[string]string{"type": "disk", "source": "/", "path": "/mnt/host"}), `snapshot "snap0": device "host" (disk)`},
		{"bkname", nil, with("..", map[string]string{"type": "none"}), nil, `invalid device name ".."`},
		{"bkraw", map[string]string{"raw.lxc": "lxc.apparmor.profile=unconfined"}, root, nil, `"raw.lxc"`},
		{"bkpriv", map[string]string{"security.privileged": "true"}, root, nil, `"security.privileged"`},
		{"bkkey", map[string]string{"user.a\nb": "x"}, root, nil, "invalid config"},
	} {
		t.Run(c.name, func(t *testing.T) {
			name := uniqueName(c.name)
			before := stateListing(t, d)
			out, err := d.berthErr("import", backupTarball(t, dir, name, c.config, c.devices, c.snapDevices), name)
			if err == nil {
				t.Errorf("a backup with %s imported: %s", c.want, out)
				_, _ = d.berthErr("delete", name)
				return
			}

			if !strings.Contains(out, c.want) {
				t.Errorf("refused, but the error does not say %s: %s", c.want, out)
			}

			names, err := d.c.GetInstanceNames(context.Background())
			if err != nil || slices.Contains(names, name) {
				t.Errorf("a refused import left an instance: %v %v", names, err)
			}

			if after := stateListing(t, d); !slices.Equal(before, after) {
				t.Errorf("a refused import left files:\nbefore %v\nafter  %v", before, after)
			}
		})
	}
}
