package images

import (
	"context"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/berth-dev/berth/shared/imagebuild"
	"github.com/berth-dev/berth/test/testutil"
)

// TestUnpackRealImage unpacks the debian-12 image that shared/imagebuild's integration test
// caches, and times it. BERTH_TEST_IMAGE names another tarball.
func TestUnpackRealImage(t *testing.T) {
	testutil.RequireRoot(t, "set owners and security xattrs")

	image := os.Getenv("BERTH_TEST_IMAGE")
	if image == "" {
		// The same cache the integration tests use; built once per machine (flock-guarded).
		var err error
		image, err = imagebuild.CachedBuild(context.Background(), "debian/12", "/var/cache/berth/images", nil)
		if err != nil {
			t.Fatalf("building the debian-12 test image: %v", err)
		}
	}

	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	meta := filepath.Join(dir, "meta")

	for _, d := range []string{rootfs, meta} {
		err := os.Mkdir(d, 0o755)
		if err != nil {
			t.Fatal(err)
		}
	}

	start := time.Now()

	stats, err := (&Unpacker{Log: slog.New(slog.NewTextHandler(io.Discard, nil))}).Unpack(image, rootfs, meta)
	if err != nil {
		t.Fatal(err)
	}

	t.Logf("unpacked %s: %d entries in %s (skipped %d devices, %d other)", filepath.Base(image), stats.Entries, time.Since(start).Round(time.Millisecond), stats.SkippedDevices, stats.SkippedOther)

	target, err := os.Readlink(filepath.Join(rootfs, "usr/sbin/init"))
	if err != nil || filepath.Base(target) != "systemd" {
		t.Errorf("usr/sbin/init -> %q, %v", target, err)
	}

	fi, err := os.Stat(filepath.Join(rootfs, "usr/bin/sudo"))
	if err != nil || fi.Mode()&os.ModeSetuid == 0 {
		t.Errorf("sudo = %v, %v (want setuid)", fi, err)
	}

	_, err = os.Stat(filepath.Join(meta, "templates/hostname.tpl"))
	if err != nil {
		t.Error(err)
	}
}
