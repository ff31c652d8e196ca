package storage

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/test/testutil"
)

// unpackBenchImage fills root with the tree named by BERTH_BENCH_ROOTFS (a real unpacked
// distribution rootfs) or else a synthetic one shaped like a minimal Debian: 10,000 files
// in 800 directories, mostly small, a few large, some symlinks; about 110 MB.
func unpackBenchImage(root string) error {
	src := os.Getenv("BERTH_BENCH_ROOTFS")
	if src != "" {
		err := os.Remove(root)
		if err != nil {
			return err
		}

		return idmap.Set{Size: 1 << 31}.CopyShifted(context.Background(), src, root)
	}

	rng := rand.New(rand.NewPCG(1, 2))
	buf := make([]byte, 1<<20)
	for i := range buf {
		buf[i] = byte(rng.Uint32())
	}

	for i := range 10000 {
		dir := filepath.Join(root, fmt.Sprintf("usr/d%02d/s%02d", i%40, i%20))
		err := os.MkdirAll(dir, 0o755)
		if err != nil {
			return err
		}

		name := filepath.Join(dir, fmt.Sprintf("f%05d", i))
		if i%20 == 0 {
			err = os.Symlink(fmt.Sprintf("f%05d", i+1), name)
		} else {
			size := 512 + rng.IntN(12*1024)
			if i%50 == 1 {
				size = 256*1024 + rng.IntN(768*1024)
			}

			err = os.WriteFile(name, buf[:size], 0o644)
		}

		if err != nil {
			return err
		}
	}

	return nil
}

func benchPool(b *testing.B, driver string) Driver {
	b.Helper()
	testutil.RequireRoot(b, "mount and chown")

	poolDir := newPoolDir(b)
	requireDriver(b, driver, poolDir)

	d, err := Load(driver, poolDir, nil)
	if err != nil {
		b.Fatal(err)
	}

	start := time.Now()
	err = d.CreateImage("bench", unpackBenchImage)
	if err != nil {
		b.Fatal(err)
	}

	b.Logf("image unpacked in %v", time.Since(start))

	return d
}

// BenchmarkOverlayInstance measures what starting a fresh overlay instance costs in storage:
// CreateInstanceFromImage + MountInstance + UnmountInstance (DeleteInstance untimed).
func BenchmarkOverlayInstance(b *testing.B) {
	d := benchPool(b, "overlay")
	ids := idmap.Set{HostUID: 1000000, HostGID: 1000000, Size: 65536}

	var create, mount, unmount time.Duration
	n := 0
	for b.Loop() {
		name := fmt.Sprintf("c%d", n)
		n++

		t0 := time.Now()
		err := d.CreateInstanceFromImage(name, "bench", ids)
		if err != nil {
			b.Fatal(err)
		}

		t1 := time.Now()
		_, err = d.MountInstance(name, ids)
		if err != nil {
			b.Fatal(err)
		}

		t2 := time.Now()
		err = d.UnmountInstance(name)
		if err != nil {
			b.Fatal(err)
		}

		t3 := time.Now()
		create += t1.Sub(t0)
		mount += t2.Sub(t1)
		unmount += t3.Sub(t2)

		b.StopTimer()
		err = d.DeleteInstance(name)
		if err != nil {
			b.Fatal(err)
		}

		b.StartTimer()
	}

	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 / float64(n) }
	b.ReportMetric(ms(create), "ms/create")
	b.ReportMetric(ms(mount), "ms/mount")
	b.ReportMetric(ms(unmount), "ms/unmount")
}

// BenchmarkDirInstance measures the dir driver's CreateInstanceFromImage (a full shifted
// copy), DeleteInstance untimed.
func BenchmarkDirInstance(b *testing.B) {
	d := benchPool(b, "dir")
	ids := idmap.Set{HostUID: 1000000, HostGID: 1000000, Size: 65536}

	n := 0
	for b.Loop() {
		name := fmt.Sprintf("c%d", n)
		n++

		err := d.CreateInstanceFromImage(name, "bench", ids)
		if err != nil {
			b.Fatal(err)
		}

		b.StopTimer()
		err = d.DeleteInstance(name)
		if err != nil {
			b.Fatal(err)
		}

		b.StartTimer()
	}
}
