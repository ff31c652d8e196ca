package integration

import (
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/lxd/migration"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/ws"
)

// hostileSource is a migration source that is not a berthd: an HTTPS server on loopback
// that speaks the protocol (lxd/migration's own sender, run with an identity id map, so
// the owners of the tree it sends go on the wire as they are on this host) and sends
// whatever tree the test built.
type hostileSource struct {
	srv    *httptest.Server
	tree   string // the volume's rootfs
	mu     sync.Mutex
	snaps  []api.InstanceSnapshot // offered before the instance, each with tree (set under mu)
	config map[string]string      // the instance config the request brings
	conns  map[string]*ws.Conn
	ready  chan struct{}
	result chan error
}

func newHostileSource(t *testing.T, tree string) *hostileSource {
	h := &hostileSource{tree: tree, conns: map[string]*ws.Conn{}, ready: make(chan struct{}), result: make(chan error, 1)}
	h.srv = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		secret := r.URL.Query().Get("secret")
		if r.URL.Path != "/1.0/operations/hostile/websocket" || (secret != "control" && secret != "fs") {
			http.NotFound(w, r)
			return
		}

		c, err := ws.Upgrade(w, r)
		if err != nil {
			return
		}

		h.mu.Lock()
		h.conns[secret] = c
		if len(h.conns) == 2 {
			close(h.ready)
		}
		h.mu.Unlock()
	}))
	h.srv.StartTLS()
	t.Cleanup(h.srv.Close)

	go func() {
		<-h.ready
		all := idmap.Set{HostUID: 0, HostGID: 0, Size: 4294967295}
		h.mu.Lock()
		snaps := h.snaps
		h.mu.Unlock()
		src := migration.Source{Control: h.conns["control"], FS: h.conns["fs"], Snapshots: snaps,
			SendTree: func(ctx context.Context, snap string, features []string) error {
				return migration.Send(ctx, filepath.Join(t.TempDir(), "jails"), h.tree, "", all, h.conns["fs"], features)
			}}
		h.result <- src.Run(context.Background())
	}()

	return h
}

// pull asks d to make instance name from the hostile source and returns the
// operation's error ("" on success).
func (h *hostileSource) pull(t *testing.T, d *daemon, name string) string {
	t.Helper()
	cert := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h.srv.Certificate().Raw}))
	body, _ := json.Marshal(map[string]any{
		"name":   name,
		"config": h.config,
		"source": map[string]any{"type": "migration", "mode": "pull", "certificate": cert,
			"operation": h.srv.URL + "/1.0/operations/hostile", "secrets": map[string]string{"control": "control", "fs": "fs"}},
	})

	code, env := d.raw("POST", "/1.0/instances", strings.NewReader(string(body)))
	if code != http.StatusAccepted {
		t.Fatalf("POST /1.0/instances (migration): %d %s", code, env.Error)
	}

	var op struct {
		ID string `json:"id"`
	}
	_ = json.Unmarshal(env.Metadata, &op)
	code, env = d.raw("GET", "/1.0/operations/"+op.ID+"/wait?timeout=120", nil)
	if code != http.StatusOK {
		t.Fatalf("waiting for the migration: %d %s", code, env.Error)
	}

	var res struct {
		Err string `json:"err"`
	}
	_ = json.Unmarshal(env.Metadata, &res)
	select {
	case <-h.result:
	case <-time.After(30 * time.Second):
	}

	return res.Err
}

// hostTree makes a small tree as a container's root filesystem, owned by root.
func hostTree(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "rootfs")
	if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}

	if err := os.WriteFile(filepath.Join(dir, "etc/hostname"), []byte("hostile\n"), 0o644); err != nil {
		t.Fatal(err)
	}

	return dir
}

// TestAttackMigrateHostileStream: a hostile migration source cannot make the receiving
// host create a device node or a file owned by an id outside the new container's range:
// the rsync receiver runs as the target container (a user namespace of its ids, chrooted
// in a jail), so the kernel refuses both and the transfer fails, leaving nothing. Without
// the user namespace, rsync as host root makes both. The positive control sends a tree
// with a setuid-root file and a link to /etc/shadow: it arrives, the link as a link, the
// file owned by the container's root.
func TestAttackMigrateHostileStream(t *testing.T) {
	parallel(t)
	b := startDaemon(t)

	t.Run("positive control", func(t *testing.T) {
		tree := hostTree(t)
		must := func(err error) {
			t.Helper()
			if err != nil {
				t.Fatal(err)
			}
		}

		must(os.WriteFile(filepath.Join(tree, "suid"), []byte("#!/bin/sh\n"), 0o755))
		must(os.Chmod(filepath.Join(tree, "suid"), 0o4755))
		must(os.Symlink("/etc/shadow", filepath.Join(tree, "shadow")))
		if e := newHostileSource(t, tree).pull(t, b, "ok"); e != "" {
			t.Fatalf("a plain tree from the test source failed: %s", e)
		}

		if code, _ := instanceOf(t, b, "ok"); code != http.StatusOK {
			t.Fatalf("instance from the test source: %d", code)
		}
	})

	for i, tc := range []struct {
		name  string
		build func(tree string) error
	}{
		{"device node", func(tree string) error {
			return unix.Mknod(filepath.Join(tree, "mem"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 1)))
		}},
		{"owner outside the range", func(tree string) error {
			p := filepath.Join(tree, "foreign")
			err := os.WriteFile(p, []byte("x"), 0o4755)
			if err == nil {
				err = os.Chown(p, 70000, 70000)
			}

			if err == nil {
				err = os.Chmod(p, 0o4755)
			}

			return err
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tree := hostTree(t)
			if err := tc.build(tree); err != nil {
				t.Fatal(err)
			}

			bad := fmt.Sprintf("bad%d", i)
			before := map[string]bool{}
			for _, p := range leftovers(b, bad) {
				before[p] = true // the positive control's instance keeps its image
			}

			e := newHostileSource(t, tree).pull(t, b, bad)
			t.Logf("refused: %s", e)
			if e == "" {
				t.Fatalf("the hostile tree (%s) was accepted", tc.name)
			}

			if code, _ := instanceOf(t, b, bad); code != http.StatusNotFound {
				t.Errorf("instance after the refused transfer: %d", code)
			}

			for _, p := range leftovers(b, bad) {
				if !before[p] {
					t.Errorf("left on disk after the refused transfer: %s", p)
				}
			}

			// Nothing of the kind anywhere under B's directory.
			_ = filepath.Walk(b.dir, func(p string, fi os.FileInfo, err error) error {
				if err != nil {
					return nil
				}

				if fi.Mode()&os.ModeDevice != 0 && fi.Name() == "mem" {
					t.Errorf("device node %s on B's host", p)
				}

				if st, ok := fi.Sys().(*unix.Stat_t); ok && st.Uid == 70000 {
					t.Errorf("file %s owned by 70000 on B's host", p)
				}

				return nil
			})
		})
	}
}
