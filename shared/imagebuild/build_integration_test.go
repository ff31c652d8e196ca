package imagebuild_test

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/images"
	"github.com/berth-dev/berth/shared/imagebuild"
	"github.com/berth-dev/berth/test/testutil"
)

// TestCachedBuildDebian12 builds the real debian-12 image (or reuses the cached one) into
// /var/cache/berth/images, where other tests find it.
func TestCachedBuildDebian12(t *testing.T) {
	if os.Geteuid() != 0 {
		testutil.SkipOrFail(t, "building an image needs root")
	}

	_, err := exec.LookPath("debootstrap")
	if err != nil {
		_, err = os.Stat("/usr/sbin/debootstrap")
	}

	if err != nil {
		testutil.SkipOrFail(t, "debootstrap is not installed")
	}

	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()

	var stages []string

	start := time.Now()

	p, err := imagebuild.CachedBuild(ctx, "debian/12", "/var/cache/berth/images", func(stage string, pct int) {
		if len(stages) == 0 || stages[len(stages)-1] != stage {
			stages = append(stages, stage)
			t.Logf("%6.1fs %3d%% %s", time.Since(start).Seconds(), pct, stage)
		}
	})
	if err != nil {
		t.Fatal(err)
	}

	fi, err := os.Stat(p)
	if err != nil {
		t.Fatal(err)
	}

	t.Logf("image %s: %.1f MiB, ready in %s (stages: %v)", p, float64(fi.Size())/(1<<20), time.Since(start).Round(time.Millisecond), stages)

	if len(stages) > 0 && stages[len(stages)-1] != "done" {
		t.Errorf("last stage = %q, want done", stages[len(stages)-1])
	}

	meta, hasRootfs, err := images.ReadMetadata(p)
	if err != nil {
		t.Fatal(err)
	}

	if !hasRootfs || meta.Architecture != "x86_64" || meta.Properties["release"] != "bookworm" || meta.CreationDate == 0 {
		t.Errorf("metadata = %+v, hasRootfs = %v", meta, hasRootfs)
	}

	if meta.Templates["/etc/hostname"] == nil || meta.Templates["/etc/hosts"] == nil {
		t.Errorf("templates = %v", meta.Templates)
	}

	entries := tarEntries(t, p)

	for name, check := range map[string]func(h *tar.Header) bool{
		"metadata.yaml":          func(h *tar.Header) bool { return h.Typeflag == tar.TypeReg },
		"templates/hostname.tpl": func(h *tar.Header) bool { return h.Typeflag == tar.TypeReg },
		"templates/hosts.tpl":    func(h *tar.Header) bool { return h.Typeflag == tar.TypeReg },
		"rootfs/usr/sbin/init": func(h *tar.Header) bool {
			return h.Typeflag == tar.TypeSymlink && strings.HasSuffix(h.Linkname, "/systemd")
		},
		"rootfs/sbin":         func(h *tar.Header) bool { return h.Typeflag == tar.TypeSymlink && h.Linkname == "usr/sbin" },
		"rootfs/usr/bin/sudo": func(h *tar.Header) bool { return h.Typeflag == tar.TypeReg && h.Mode&0o4000 != 0 },
		"rootfs/etc/machine-id": func(h *tar.Header) bool {
			return h.Typeflag == tar.TypeReg && h.Size == 0
		},
		"rootfs/etc/systemd/network/eth0.network": func(h *tar.Header) bool { return h.Typeflag == tar.TypeReg },
		"rootfs/etc/systemd/system/sys-kernel-debug.mount": func(h *tar.Header) bool {
			return h.Typeflag == tar.TypeSymlink && h.Linkname == "/dev/null"
		},
	} {
		h, ok := entries[name]
		if !ok {
			t.Errorf("%s missing from the image", name)
			continue
		}

		if !check(h) {
			t.Errorf("%s: unexpected entry %+v", name, h)
		}
	}

	for name := range entries {
		if strings.HasPrefix(name, "rootfs/dev/") || strings.HasPrefix(name, "rootfs/var/lib/apt/lists/") && name != "rootfs/var/lib/apt/lists/" {
			t.Errorf("%s should have been removed", name)
		}
	}
}

func tarEntries(t *testing.T, p string) map[string]*tar.Header {
	t.Helper()

	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}

	defer f.Close()

	tr, closer, err := images.OpenTar(f)
	if err != nil {
		t.Fatal(err)
	}

	defer closer.Close()

	entries := map[string]*tar.Header{}

	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}

		if err != nil {
			t.Fatal(err)
		}

		entries[strings.TrimSuffix(strings.TrimPrefix(h.Name, "./"), "/")] = h
	}

	return entries
}
