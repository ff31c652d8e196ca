package idmap

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
)

// TestWidenRootRange: Debian's lxd package leaves root 10000001 ids (152 containers); a
// default-sized range is appended after every entry, the old one kept, and the next
// RootRange takes the new one. A second call changes nothing.
func TestWidenRootRange(t *testing.T) {
	dir := t.TempDir()
	subuid, subgid := filepath.Join(dir, "subuid"), filepath.Join(dir, "subgid")
	debian := "_lxd:100000:10000001\nroot:100000:10000001\n"
	writeFile(t, subuid, debian, 0o644)
	writeFile(t, subgid, debian, 0o644)

	widened, err := WidenRootRange(subuid, subgid, DensityRootCount)
	if err != nil || !widened {
		t.Fatalf("WidenRootRange = %t, %v; want an appended range", widened, err)
	}

	start := (int64(100000+10000001) + DefaultSize - 1) / DefaultSize * DefaultSize
	want := debian + "root:" + strconv.FormatInt(start, 10) + ":1000000000\n"
	for _, p := range []string{subuid, subgid} {
		if got := readFile(t, p); got != want {
			t.Errorf("%s = %q, want %q", filepath.Base(p), got, want)
		}
	}

	us, uc, gs, gc, err := EnsureRootRange(subuid, subgid)
	if err != nil || us != start || gs != start || uc != DefaultRootCount || gc != DefaultRootCount {
		t.Errorf("root's range now %d+%d / %d+%d (%v), want %d+%d", us, uc, gs, gc, err, start, int64(DefaultRootCount))
	}

	widened, err = WidenRootRange(subuid, subgid, DensityRootCount)
	if err != nil || widened {
		t.Errorf("second WidenRootRange = %t, %v; want nothing to do", widened, err)
	}

	if got := readFile(t, subuid); got != want {
		t.Errorf("second call rewrote subuid: %q", got)
	}
}

// TestWidenRootRangeRefusals: a container's gids sit at its uids' offset in root's ranges
// (IDRange.at), so files whose new ranges would not keep that distance are left alone,
// with an error saying what to do.
func TestWidenRootRangeRefusals(t *testing.T) {
	for _, c := range []struct{ name, subuid, subgid string }{
		// Another owner's entry in subgid only: the new gid range starts further on.
		{"gid offset", "root:100000:65536\n", "root:100000:65536\nbob:5000000:65536\n"},
		// Only subgid small, and subuid's root range larger than the one appended:
		// RootRange would keep the old uids and take the new gids.
		{"one small", "root:100000:2000000000\n", "root:100000:65536\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			subuid, subgid := filepath.Join(dir, "subuid"), filepath.Join(dir, "subgid")
			writeFile(t, subuid, c.subuid, 0o644)
			writeFile(t, subgid, c.subgid, 0o644)

			widened, err := WidenRootRange(subuid, subgid, DensityRootCount)
			if err == nil || widened {
				t.Fatalf("WidenRootRange = %t, %v; want a refusal", widened, err)
			}

			if readFile(t, subuid) != c.subuid || readFile(t, subgid) != c.subgid {
				t.Error("a refused widening wrote a file")
			}
		})
	}
}

// TestWidenRootRangeBothOrNeither: when subgid cannot be written, subuid is put back:
// one file widened alone would give new containers the gids of old ones.
func TestWidenRootRangeBothOrNeither(t *testing.T) {
	dir := t.TempDir()
	subuid, subgid := filepath.Join(dir, "subuid"), filepath.Join(dir, "subgid")
	writeFile(t, subuid, "root:100000:65536\n", 0o644)
	writeFile(t, subgid, "root:100000:65536\n", 0o644)

	real := writeDurable
	t.Cleanup(func() { writeDurable = real })
	writeDurable = func(path string, data []byte, perm os.FileMode) error {
		if path == subgid {
			return errors.New("disk full")
		}

		return real(path, data, perm)
	}

	widened, err := WidenRootRange(subuid, subgid, DensityRootCount)
	if err == nil || widened {
		t.Fatalf("WidenRootRange = %t, %v; want a failure", widened, err)
	}

	if got := readFile(t, subuid); got != "root:100000:65536\n" {
		t.Errorf("subuid after the failed widening: %q, want it as it was", got)
	}
}
