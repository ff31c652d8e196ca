package storage

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/idmap"
)

// ProbeOverlay checks, by doing it in a temporary directory under poolDir, that this host
// can run the overlay driver there: an idmapped mount of a root-owned tree, an overlay on
// top of it showing shifted owners, and a copy-up keeping them. The error says which step
// failed. poolDir is created if missing.
func ProbeOverlay(poolDir string) (err error) {
	err = os.MkdirAll(poolDir, 0o711)
	if err != nil {
		return fmt.Errorf("probing overlay: %w", err)
	}

	tmp, err := os.MkdirTemp(poolDir, ".probe-")
	if err != nil {
		return fmt.Errorf("probing overlay: %w", err)
	}

	// Unmount before removal; never RemoveAll through a mount (lower is our own tree
	// here, but the rule is cheap to keep).
	var mounts []string
	defer func() {
		for i := len(mounts) - 1; i >= 0; i-- {
			_ = unmountAll(mounts[i])
		}

		left, _ := mountsUnder(tmp)
		if len(left) == 0 {
			_ = os.RemoveAll(tmp)
		}
	}()

	p := func(s string) string { return filepath.Join(tmp, s) }
	for _, sub := range []string{"image", "image/etc", "upper", "work", "lower", "rootfs"} {
		err = os.Mkdir(p(sub), 0o755)
		if err != nil {
			return fmt.Errorf("probing overlay: %w", err)
		}
	}

	err = os.WriteFile(p("image/etc/probe"), []byte("x"), 0o644)
	if err != nil {
		return fmt.Errorf("probing overlay: %w", err)
	}

	ids := idmap.Set{HostUID: idmap.DefaultRootStart, HostGID: idmap.DefaultRootStart, Size: idmap.DefaultSize}

	err = mountIdmapped(p("image"), p("lower"), ids)
	if err != nil {
		return fmt.Errorf("probing overlay: %w", err)
	}

	mounts = append(mounts, p("lower"))

	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s,%s", p("lower"), p("upper"), p("work"), overlayOptions)
	err = unix.Mount("overlay", p("rootfs"), "overlay", unix.MS_NODEV, opts)
	if err != nil {
		return fmt.Errorf("probing overlay: mounting overlay over an idmapped layer: %w", err)
	}

	mounts = append(mounts, p("rootfs"))

	var st syscall.Stat_t
	err = syscall.Stat(p("rootfs/etc/probe"), &st)
	if err != nil {
		return fmt.Errorf("probing overlay: %w", err)
	}

	if int64(st.Uid) != ids.HostUID || int64(st.Gid) != ids.HostGID {
		return fmt.Errorf("probing overlay: image file shows owner %d:%d, want %d:%d", st.Uid, st.Gid, ids.HostUID, ids.HostGID)
	}

	// Copy-up: the upper copy must keep the shifted owner.
	err = os.Chmod(p("rootfs/etc/probe"), 0o600)
	if err != nil {
		return fmt.Errorf("probing overlay: copying up: %w", err)
	}

	err = syscall.Stat(p("upper/etc/probe"), &st)
	if err != nil {
		return fmt.Errorf("probing overlay: copied-up file: %w", err)
	}

	if int64(st.Uid) != ids.HostUID {
		return fmt.Errorf("probing overlay: copied-up file owned by %d, want %d", st.Uid, ids.HostUID)
	}

	return nil
}
