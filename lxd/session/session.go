// Package session runs what a client does inside a running container: commands (exec) and
// file operations. Each is served by a long-lived helper per container (lxd/nsexec: the
// exec server, the file server), started from the daemon's sealed binary by the first use,
// reused by the next ones, and gone with the container's init; one registry (servers.go)
// keeps both kinds. A stopped instance's files are opened on the host, through the root
// the instance manager mounts for the duration.
//
// The package reaches instances only through Instances, what it needs of the instance
// manager: is it running and with which init, the seccomp filter that init got, its id
// map and its exec environment.
package session

import (
	"context"
	"time"

	"github.com/berth-dev/berth/lxd/confine"
	"github.com/berth-dev/berth/lxd/container"
	"github.com/berth-dev/berth/lxd/instance"
	"github.com/berth-dev/berth/lxd/nsexec"
)

// Instances is what sessions need of the instance manager (*instance.Manager).
type Instances interface {
	// ExecTarget returns the init pid of a running, unfrozen instance: a 400 naming its
	// state otherwise, a 404 when there is none.
	ExecTarget(name string) (int, error)
	// StartedSeccomp is the seccomp filter the running instance's init got (nil: none).
	StartedSeccomp(name string) (*confine.Filter, error)
	// Environment is the instance's environment.* keys, expanded from its profiles.
	Environment(ctx context.Context, name string) (map[string]string, error)
	// OpenFilesRoot opens an instance for the files API: a running one's monitor, or a
	// stopped one's root, mounted (and the instance locked) until its Release.
	OpenFilesRoot(ctx context.Context, name string) (*instance.FilesRoot, error)
	// Running is the monitor of a running instance, nil when it is stopped.
	Running(name string) *container.Monitor
}

// serverIdle is how long a container's exec or file server outlives its last use: long
// enough for scripts that exec in a loop or a `file push -r`, short enough that an idle
// container carries no helper.
const serverIdle = 5 * time.Minute

// Service runs exec sessions and file operations in instances.
type Service struct {
	exe       string
	instances Instances

	execServers servers[*nsexec.Server]     // time themselves out (nsexec.ServerOptions.IdleTimeout)
	fileServers servers[*nsexec.FileServer] // closed by the registry once idle
}

// New returns the sessions of instances; exe is the daemon's sealed binary
// (sys.SealedSelfExe), from which the helpers start.
func New(exe string, instances Instances) *Service {
	return &Service{
		exe:         exe,
		instances:   instances,
		fileServers: servers[*nsexec.FileServer]{idle: serverIdle},
	}
}
