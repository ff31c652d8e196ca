package migration

import (
	"context"
	"crypto/rand"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/lxd/idmap"
)

// BenchmarkRsync100MiB sends a tree holding 100 MiB of random data through the jailed
// rsync ends over a loopback websocket (the migration's fs stream), as MB/s.
func BenchmarkRsync100MiB(b *testing.B) {
	if os.Geteuid() != 0 {
		b.Skip("needs root")
	}

	base := b.TempDir()
	src := filepath.Join(base, "src")
	_ = os.MkdirAll(src, 0o755)
	f, err := os.Create(filepath.Join(src, "big"))
	if err != nil {
		b.Fatal(err)
	}

	_, err = io.CopyN(f, rand.Reader, 100<<20)
	_ = f.Close()
	if err != nil {
		b.Fatal(err)
	}

	ids := idmap.Set{HostUID: 0, HostGID: 0, Size: 65536}
	dstIDs := idmap.Set{HostUID: 4000000, HostGID: 4000000, Size: 65536}
	a, c := wsPair(b)
	b.SetBytes(100 << 20)
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		dst := filepath.Join(base, "dst", string(rune('a'+i%26)))
		_ = os.RemoveAll(dst)
		_ = os.MkdirAll(dst, 0o755)
		errc := make(chan error, 1)
		go func() { errc <- Send(context.Background(), filepath.Join(base, "jails"), src, "", ids, a, ourFeatures) }()
		_, err := Recv(context.Background(), filepath.Join(base, "jails"), dst, nil, dstIDs, ContainerMapping(dstIDs), c, ourFeatures)
		if err != nil {
			b.Fatal(err)
		}

		if err := <-errc; err != nil {
			b.Fatal(err)
		}
	}
}
