package migration

import (
	"context"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"

	"github.com/berth-dev/berth/lxd/idmap"
)

// TestRsyncReceiveLXDMap receives a tree as LXD sends it: host ids on the wire (a host
// root sender) and LXD's id map in the header. Directories and files owned by non-root
// users land on disk as the container's ids.
func TestRsyncReceiveLXDMap(t *testing.T) {
	requireRoot(t)
	base := t.TempDir()
	src := filepath.Join(base, "src")
	host := idmap.Set{HostUID: 0, HostGID: 0, Size: 1<<32 - 1}
	dstIDs := idmap.Set{HostUID: 4000000, HostGID: 4000000, Size: 65536}

	must(t, os.MkdirAll(filepath.Join(src, "home/u"), 0o755))
	must(t, os.WriteFile(filepath.Join(src, "home/u/f"), []byte("hello"), 0o640))
	for p, id := range map[string][2]int{"": {3000000, 3000000}, "home": {3000000, 3000999}, "home/u": {3000998, 3000998}, "home/u/f": {3001000, 3001001}} {
		must(t, os.Chown(filepath.Join(src, p), id[0], id[1]))
	}

	lxd := []*IDMapType{
		{Isuid: proto.Bool(true), Isgid: proto.Bool(false), Hostid: proto.Int32(3000000), Nsid: proto.Int32(0), Maprange: proto.Int32(1000000000)},
		{Isuid: proto.Bool(false), Isgid: proto.Bool(true), Hostid: proto.Int32(3000000), Nsid: proto.Int32(0), Maprange: proto.Int32(1000000000)},
	}
	m, err := ReceiveMapping(dstIDs, lxd)
	must(t, err)

	a, b := wsPair(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, run := range []string{"one", "two"} {
		dst := filepath.Join(base, "dst-"+run)
		must(t, os.Mkdir(dst, 0o755))
		var basis []Basis
		if run == "two" {
			basis = []Basis{{Dir: filepath.Join(base, "dst-one")}} // the second run copies from the first
		}

		errc := make(chan error, 1)
		go func() { errc <- Send(ctx, filepath.Join(base, "jails"), src, "", host, a, ourFeatures) }()
		_, err = Recv(ctx, filepath.Join(base, "jails"), dst, basis, dstIDs, m, b, ourFeatures)
		if err != nil {
			t.Fatalf("recv %s: %v (send: %v)", run, err, <-errc)
		}

		must(t, <-errc)
		for p, want := range map[string][2]uint32{"rootfs/home": {0, 999}, "rootfs/home/u": {998, 998}, "rootfs/home/u/f": {1000, 1001}} {
			var st syscall.Stat_t
			must(t, syscall.Lstat(filepath.Join(dst, p), &st))
			if st.Uid != want[0] || st.Gid != want[1] {
				t.Errorf("%s %s: %d:%d, want %d:%d", run, p, st.Uid, st.Gid, want[0], want[1])
			}
		}
	}
}
