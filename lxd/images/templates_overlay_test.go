package images

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/test/testutil"
)

// overlayFixture mounts an overlay whose lower layer holds etc/hostname (mode 0640) and
// returns its mount point and upper directory; the mount goes with the test.
func overlayFixture(t *testing.T) (merged, upper string) {
	t.Helper()
	testutil.RequireRoot(t, "mount an overlay")

	base := t.TempDir()
	lower, upper, work, merged := filepath.Join(base, "lower"), filepath.Join(base, "upper"), filepath.Join(base, "work"), filepath.Join(base, "merged")
	for _, d := range []string{filepath.Join(lower, "etc"), upper, work, merged} {
		err := os.MkdirAll(d, 0o755)
		if err != nil {
			t.Fatal(err)
		}
	}

	err := os.WriteFile(filepath.Join(lower, "etc/hostname"), []byte("image-default\n"), 0o640)
	if err != nil {
		t.Fatal(err)
	}

	err = unix.Mount("overlay", merged, "overlay", 0, "lowerdir="+lower+",upperdir="+upper+",workdir="+work)
	if err != nil {
		testutil.SkipOrFail(t, "mounting an overlay: %v", err)
	}

	t.Cleanup(func() { _ = unix.Unmount(merged, unix.MNT_DETACH) })

	return merged, upper
}

// A first start's templates rewrite files of the image's layer. Nothing is opened for
// writing before a template has rendered: one that fails leaves the target as it was, not
// even copied up into the instance's layer (where it would hide a later image's file).
func TestRenderTemplatesOverlay(t *testing.T) {
	merged, upper := overlayFixture(t)
	_, metaDir := templateFixture(t, map[string]string{
		"hostname.tpl": "{{ instance.name }}\n",
		"broken.tpl":   "{{ instance.name ",
	})

	// One at a time: rendering stops at the first failure.
	for _, target := range []string{"/etc/hostname", "/etc/new"} {
		broken := &api.ImageMetadata{Templates: map[string]*api.ImageMetadataTemplate{
			target: {When: []string{"create"}, Template: "broken.tpl"},
		}}

		err := RenderTemplates(merged, metaDir, broken, TriggerCreate, testContext, 0, 0)
		if err == nil {
			t.Fatalf("%s: a template that does not parse rendered", target)
		}

		_, err = os.Lstat(filepath.Join(upper, target))
		if !os.IsNotExist(err) {
			t.Errorf("upper%s after a failed render: %v (want none)", target, err)
		}
	}

	if got := readString(t, filepath.Join(merged, "etc/hostname")); got != "image-default\n" {
		t.Errorf("hostname after a failed render = %q", got)
	}

	meta := &api.ImageMetadata{Templates: map[string]*api.ImageMetadataTemplate{
		"/etc/hostname": {When: []string{"create"}, Template: "hostname.tpl"},
	}}

	err := RenderTemplates(merged, metaDir, meta, TriggerCreate, testContext, 0, 0)
	if err != nil {
		t.Fatal(err)
	}

	if got := readString(t, filepath.Join(upper, "etc/hostname")); got != "c1\n" {
		t.Errorf("upper/etc/hostname = %q", got)
	}

	var st unix.Stat_t

	err = unix.Stat(filepath.Join(merged, "etc/hostname"), &st)
	if err != nil {
		t.Fatal(err)
	}

	if st.Mode&0o7777 != 0o640 {
		t.Errorf("hostname's mode %o, want the image's 640", st.Mode&0o7777)
	}
}
