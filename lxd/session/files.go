package session

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/berth-dev/berth/lxd/container"
	"github.com/berth-dev/berth/lxd/fileio"
	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/lxd/nsexec"
	"github.com/berth-dev/berth/shared/api"
)

// Files is an instance's root filesystem opened for the files API; every id it takes or
// returns is the container's. Close it when done.
//
// A running instance's tree is reached only through its file server: a helper in the
// container's user and mount namespaces that is the container's root, so the kernel
// refuses it whatever the container's root could not do itself, such as writing a host
// sysctl it bind-mounted over the target. A stopped instance's rootfs is mounted on the
// host and opened by the daemon, with no mount crossed (fileio.OpenRoot).
type Files struct {
	tree    fileio.Tree
	root    *fileio.Root // the stopped instance's, closed with Files
	ids     idmap.Set
	inside  bool // tree speaks the container's ids (the file server)
	release func()
}

// OpenFiles opens the tree an instance sees as "/". A running instance is served by its
// file server, inside its namespaces, so paths cross the container's own mounts (its tmpfs
// /tmp and /run) exactly as inside, with the container's permissions. A stopped instance
// is mounted for the duration and its lock is held until Close, so it cannot start (and
// mount a second overlay on the same upper layer) meanwhile.
func (s *Service) OpenFiles(ctx context.Context, name string) (*Files, error) {
	r, err := s.instances.OpenFilesRoot(ctx, name)
	if err != nil {
		return nil, err
	}

	if r.Running == nil {
		return &Files{tree: r.Root, root: r.Root, ids: r.IDs, release: r.Release}, nil
	}

	srv, release, err := s.fileServer(name, r.Running)
	if err != nil {
		return nil, err
	}

	return &Files{tree: srv, ids: r.IDs, inside: true, release: release}, nil
}

// fileServer returns the live file server of the instance mon runs, starting one if there
// is none, and a release to call once the operation is done.
func (s *Service) fileServer(name string, mon *container.Monitor) (*nsexec.FileServer, func(), error) {
	srv, release, err := s.fileServers.get(name, mon.InitPID, func(pid int) (*nsexec.FileServer, error) {
		srv, err := nsexec.StartFileServer(s.exe, pid)
		if err != nil {
			return nil, err
		}

		// The pid was read before the server took a pidfd of it: make sure it was still
		// this container's init, not a process that got its number since.
		if s.instances.Running(name) != mon || mon.InitPID() != pid {
			srv.Close()
			return nil, api.StatusErrorf(http.StatusConflict, "instance %q changed state, try again", name)
		}

		return srv, nil
	})
	if err == nil {
		return srv, release, nil
	}

	if api.StatusErrorCheck(err) {
		return nil, nil, err
	}

	return nil, nil, fmt.Errorf("starting the file server of %q: %w", name, err)
}

// Close releases the tree (for a stopped instance, unmounts it and lets other state changes
// of the instance proceed).
func (f *Files) Close() {
	if f.root != nil {
		_ = f.root.Close()
		f.root = nil
	}

	if f.release != nil {
		f.release()
		f.release = nil
	}
}

// owner maps container ids to the ids the tree takes; -1 means root. Ids outside the
// instance's map are a 400.
func (f *Files) owner(uid, gid int64) (fileio.Owner, error) {
	if uid < 0 {
		uid = 0
	}

	if gid < 0 {
		gid = 0
	}

	if uid >= f.ids.Size || gid >= f.ids.Size {
		return fileio.Owner{}, api.StatusErrorf(http.StatusBadRequest, "owner %d:%d is outside the instance's id map (0-%d)", uid, gid, f.ids.Size-1)
	}

	if f.inside {
		return fileio.Owner{UID: int(uid), GID: int(gid)}, nil
	}

	return fileio.Owner{UID: int(f.ids.UIDToHost(uid)), GID: int(f.ids.GIDToHost(gid))}, nil
}

// containerIDs maps the tree's ids back to what the container sees; ids outside the map
// show as the overflow id 65534, as they do inside.
func (f *Files) containerIDs(e *fileio.Entry) {
	if f.inside {
		return // the kernel mapped them already
	}

	e.UID, e.GID = e.UID-f.ids.HostUID, e.GID-f.ids.HostGID
	if e.UID < 0 || e.UID >= f.ids.Size {
		e.UID = 65534
	}

	if e.GID < 0 || e.GID >= f.ids.Size {
		e.GID = 65534
	}
}

// gone turns a file server that went away under an operation (its container stopped)
// into a 409.
func gone(err error) error {
	if errors.Is(err, fileio.ErrServerGone) {
		return api.StatusErrorf(http.StatusConflict, "the instance changed state, try again")
	}

	return err
}

// Open looks at p (fileio.Root.Open), with the container's ids.
func (f *Files) Open(p string) (*fileio.Entry, error) {
	e, err := f.tree.Open(p)
	if err != nil {
		return nil, gone(err)
	}

	f.containerIDs(e)
	return e, nil
}

// WriteFile writes body to the regular file p (fileio.Root.WriteFile); a new file gets
// mode and the container ids uid:gid (-1: root).
func (f *Files) WriteFile(p string, body io.Reader, appendMode bool, mode uint32, uid, gid int64) error {
	owner, err := f.owner(uid, gid)
	if err != nil {
		return err
	}

	_, err = f.tree.WriteFile(p, body, appendMode, mode, owner)
	return gone(err)
}

// Mkdir creates directory p (fileio.Root.Mkdir).
func (f *Files) Mkdir(p string, mode uint32, uid, gid int64) error {
	owner, err := f.owner(uid, gid)
	if err != nil {
		return err
	}

	return gone(f.tree.Mkdir(p, mode, owner))
}

// Symlink makes p a symlink to target (fileio.Root.Symlink).
func (f *Files) Symlink(target, p string, uid, gid int64) error {
	owner, err := f.owner(uid, gid)
	if err != nil {
		return err
	}

	return gone(f.tree.Symlink(target, p, owner))
}

// Remove deletes p and what is below it (fileio.Root.Remove).
func (f *Files) Remove(p string) error {
	return gone(f.tree.Remove(p))
}
