package device

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/setup"
)

// unixDevice gives the container a device node (unix-char: /dev/fuse, /dev/net/tun, ...).
// mknod is not allowed inside a user namespace, so the daemon makes the node in the
// instance's device directory on the host, owned by the mapped uid/gid with the wanted
// mode, and binds it onto path in the container's /dev (LXD's way). The container is in
// no devices cgroup, so nothing else has to allow it.
type unixDevice struct{ char bool }

func (u unixDevice) validate(conf map[string]string) error {
	err := onlyKeys(conf, "path", "source", "major", "minor", "uid", "gid", "mode", "required")
	if err != nil {
		return err
	}

	if conf["path"] == "" && conf["source"] == "" {
		return fmt.Errorf("\"path\" or \"source\" is required")
	}

	p := conf["path"]
	if p == "" {
		p = conf["source"]
	}

	err = containerPath("path", p)
	if err != nil {
		return err
	}

	for _, k := range []string{"major", "minor", "uid", "gid"} {
		if conf[k] != "" {
			_, err := strconv.ParseUint(conf[k], 10, 32)
			if err != nil {
				return fmt.Errorf("%q: %q is not a number", k, conf[k])
			}
		}
	}

	if conf["mode"] != "" {
		m, err := strconv.ParseUint(conf["mode"], 8, 32)
		if err != nil || m > 0o777 {
			return fmt.Errorf("\"mode\": %q is not an octal mode like 0660", conf["mode"])
		}
	}

	if (conf["major"] == "") != (conf["minor"] == "") {
		return fmt.Errorf("\"major\" and \"minor\" go together")
	}

	return nil
}

// target is the path in the container: path, else the host path.
func (unixDevice) target(conf map[string]string) string {
	if conf["path"] != "" {
		return conf["path"]
	}

	return conf["source"]
}

// makeNode creates the node on the host in the device directory and returns its path.
func (u unixDevice) makeNode(r *run) (string, error) {
	var rdev uint64
	if r.conf["major"] != "" {
		maj, _ := strconv.ParseUint(r.conf["major"], 10, 32)
		mnr, _ := strconv.ParseUint(r.conf["minor"], 10, 32)
		rdev = unix.Mkdev(uint32(maj), uint32(mnr))
	} else {
		src := r.conf["source"]
		if src == "" {
			src = r.conf["path"]
		}

		var st unix.Stat_t
		err := unix.Stat(src, &st)
		if err != nil {
			return "", fmt.Errorf("reading host device %q: %w", src, err)
		}

		want := uint32(unix.S_IFBLK)
		if u.char {
			want = unix.S_IFCHR
		}

		if st.Mode&unix.S_IFMT != want {
			return "", fmt.Errorf("host path %q is not a %s device", src, r.conf["type"])
		}

		rdev = st.Rdev
	}

	mode := uint32(0o660)
	if r.conf["mode"] != "" {
		m, _ := strconv.ParseUint(r.conf["mode"], 8, 32)
		mode = uint32(m)
	}

	uid, _ := strconv.ParseInt(orDefault(r.conf["uid"], "0"), 10, 64)
	gid, _ := strconv.ParseInt(orDefault(r.conf["gid"], "0"), 10, 64)
	huid, hgid := r.ids.UIDToHost(uid), r.ids.GIDToHost(gid)
	if huid < 0 || hgid < 0 {
		return "", fmt.Errorf("uid %d or gid %d is outside the container's id map", uid, gid)
	}

	err := os.MkdirAll(r.stage, 0o711)
	if err != nil {
		return "", err
	}

	node := r.stagePath()
	_ = os.Remove(node)

	typ := uint32(unix.S_IFBLK)
	if u.char {
		typ = unix.S_IFCHR
	}

	err = unix.Mknod(node, typ|mode, int(rdev))
	if err == nil {
		err = unix.Chmod(node, mode) // mknod honours the umask
	}

	if err == nil {
		err = unix.Lchown(node, int(huid), int(hgid))
	}

	if err != nil {
		_ = os.Remove(node)
		return "", fmt.Errorf("creating device node %q: %w", node, err)
	}

	return node, nil
}

func (u unixDevice) prepare(r *run) ([]setup.Mount, error) {
	node, err := u.makeNode(r)
	if err != nil {
		if optional(r.conf) {
			return nil, nil
		}

		return nil, err
	}

	return []setup.Mount{{Source: node, Target: filepath.Clean(u.target(r.conf))}}, nil
}

func (unixDevice) started(*run) error { return nil }

func (u unixDevice) attach(r *run) error {
	if !u.char {
		return errRequiresRestart
	}

	node, err := u.makeNode(r)
	if err != nil {
		return err
	}

	defer func() { _ = os.Remove(node) }()

	return r.hotMount(node, filepath.Clean(u.target(r.conf)))
}

func (u unixDevice) detach(r *run) error {
	if !u.char {
		return errRequiresRestart
	}

	return hotUnmount(r.initPID, r.ids, u.target(r.conf), true)
}

func orDefault(v, def string) string {
	if v == "" {
		return def
	}

	return v
}
