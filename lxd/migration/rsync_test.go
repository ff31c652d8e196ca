package migration

import (
	"context"
	"crypto/sha256"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/shared/ws"
)

// wsPair is two ends of one websocket on loopback.
func wsPair(t testing.TB) (*ws.Conn, *ws.Conn) {
	t.Helper()
	server := make(chan *ws.Conn, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := ws.Upgrade(w, r)
		if err != nil {
			t.Error(err)
			return
		}

		server <- c
	}))
	t.Cleanup(srv.Close)

	client, err := ws.NewDialer(ws.DialConfig{}).Dial(context.Background(), "ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}

	s := <-server
	t.Cleanup(func() { _ = client.Close(); _ = s.Close() })
	return client, s
}

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" || os.Getenv("BERTH_TEST_STRICT") != "" {
			t.Fatal("needs root")
		}

		t.Skip("needs root")
	}
}

// TestRsyncRoundTrip sends a tree owned by a container's ids and receives it as another
// container: the receiver's disk holds the container's view (0-based), twice in a row
// over the same websocket (one run per snapshot).
func TestRsyncRoundTrip(t *testing.T) {
	requireRoot(t)
	base := t.TempDir()
	src := filepath.Join(base, "src")
	srcIDs := idmap.Set{HostUID: 3000000, HostGID: 3000000, Size: 65536}
	dstIDs := idmap.Set{HostUID: 4000000, HostGID: 4000000, Size: 65536}

	must(t, os.MkdirAll(filepath.Join(src, "home/u"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "home/u/f"), []byte("hello"), 0o640))
	must(t, os.Symlink("/etc/passwd", filepath.Join(src, "link")))
	must(t, os.Chown(filepath.Join(src, "home/u/f"), 3001000, 3001001))
	must(t, os.Chown(filepath.Join(src, "home/u"), 3001000, 3001000))
	must(t, os.Chown(src, 3000000, 3000000))
	must(t, os.Chown(filepath.Join(src, "home"), 3000000, 3000000))
	must(t, os.Lchown(filepath.Join(src, "link"), 3000000, 3000000))

	a, b := wsPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	for _, run := range []string{"one", "two"} {
		dst := filepath.Join(base, "dst-"+run)
		must(t, os.Mkdir(dst, 0o755))
		errc := make(chan error, 1)
		go func() { errc <- Send(ctx, filepath.Join(base, "jails"), src, "", srcIDs, a, ourFeatures) }()
		var basis []Basis
		if run == "two" {
			basis = []Basis{{Dir: filepath.Join(base, "dst-one")}} // the second run copies from the first
		}

		_, err := Recv(ctx, filepath.Join(base, "jails"), dst, basis, dstIDs, ContainerMapping(dstIDs), b, ourFeatures)
		if err != nil {
			t.Fatalf("recv %s: %v (send: %v)", run, err, <-errc)
		}

		err = <-errc
		if err != nil {
			t.Fatalf("send %s: %v", run, err)
		}

		var st syscall.Stat_t
		must(t, syscall.Stat(filepath.Join(dst, "rootfs/home/u/f"), &st))
		if st.Uid != 1000 || st.Gid != 1001 || st.Mode&0o7777 != 0o640 {
			t.Fatalf("%s: owner %d:%d mode %o, want 1000:1001 640", run, st.Uid, st.Gid, st.Mode&0o7777)
		}

		data, err := os.ReadFile(filepath.Join(dst, "rootfs/home/u/f"))
		if err != nil || sha256.Sum256(data) != sha256.Sum256([]byte("hello")) {
			t.Fatalf("%s: content %q %v", run, data, err)
		}

		target, err := os.Readlink(filepath.Join(dst, "rootfs/link"))
		if err != nil || target != "/etc/passwd" {
			t.Fatalf("%s: link %q %v", run, target, err)
		}
	}

	entries, _ := os.ReadDir(filepath.Join(base, "jails"))
	if len(entries) != 0 {
		t.Fatalf("jails left behind: %v", entries)
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
