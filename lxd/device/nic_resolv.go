package device

import (
	"fmt"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/lxd/fileio"
	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/lxd/network"
	"github.com/berth-dev/berth/shared/api"
)

// resolvMarker starts the resolv.conf Berth writes. A file without it is the user's.
const resolvMarker = "# Written by Berth"

// maxResolvConf bounds what is read of a container's resolv.conf: Berth's own is a few
// lines, anything bigger is the user's (or an attempt to make the daemon read 64 GiB).
const maxResolvConf = 1 << 20

// writeResolvConf points the container at its network's dnsmasq, when the file is the
// image's empty placeholder or one Berth wrote. It runs before the container starts, on
// its rootfs mounted on the host, through fileio: resolved inside the rootfs, never a
// symlink followed at the last component, a FIFO or device never opened, a sparse file
// never read past maxResolvConf, nothing written on a kernel filesystem.
func writeResolvConf(rootfs string, nw network.Network, ids idmap.Set) error {
	root, err := fileio.OpenRoot(rootfs)
	if err != nil {
		return err
	}

	defer root.Close()

	const p = "/etc/resolv.conf"
	cur, err := root.ReadFile(p, maxResolvConf)
	switch {
	case api.StatusErrorCheck(err, http.StatusNotFound):
	case api.StatusErrorCheck(err, http.StatusBadRequest, http.StatusRequestEntityTooLarge):
		return nil // a symlink (systemd-resolved or the user manages it), or not ours
	case err != nil:
		return err
	case strings.TrimSpace(string(cur)) != "" && !strings.HasPrefix(string(cur), resolvMarker):
		return nil
	}

	content := fmt.Sprintf("%s from network %s; remove this line to manage the file yourself.\nnameserver %s\nsearch %s\n",
		resolvMarker, nw.Name(), nw.Gateway(), nw.Domain())
	if string(cur) == content {
		return nil // as the last start left it: no write
	}

	_, err = root.WriteFile(p, strings.NewReader(content), false, 0o644, fileio.Owner{UID: int(ids.HostUID), GID: int(ids.HostGID)})
	return err
}
