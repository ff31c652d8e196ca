package main

import (
	"context"
	"io"
	"net"
	"os"
	"syscall"
	"time"

	"github.com/berth-dev/berth/lxd/instance"
	"github.com/berth-dev/berth/lxd/session"
	"github.com/berth-dev/berth/lxd/storage"
	"github.com/berth-dev/berth/shared/api"
)

// The handlers reach the subsystems that run containers and host networks
// through these interfaces, so that the client and CLI tests can run the real
// router (handlers, response, operations, events, the stream protocol) over
// fakes (fake_backends_test.go). The database, image store and profiles are
// real in those tests too.

// instanceService is what the handlers use of lxd/instance and lxd/session:
// *instance.Manager, its services and *session.Service through managerService.
type instanceService interface {
	// Reading.
	List(ctx context.Context, full bool) ([]api.InstanceFull, error)
	// ListLocal is List of this member's instances: for what acts on this host.
	ListLocal(ctx context.Context, full bool) ([]api.InstanceFull, error)
	Get(ctx context.Context, name string, full bool) (*api.InstanceFull, error)
	// Exists is nil if the instance exists, else a 404: a check, without Get's render.
	Exists(ctx context.Context, name string) error
	Names(ctx context.Context) ([]string, error)
	State(ctx context.Context, name string) (*api.InstanceState, error)

	// Life cycle.
	PrepareCreate(ctx context.Context, req api.InstancesPost) (*instance.CreateRequest, error)
	Create(ctx context.Context, cr *instance.CreateRequest) error
	PrepareCopy(ctx context.Context, req api.InstancesPost) (*instance.CopyRequest, error)
	Copy(ctx context.Context, cr *instance.CopyRequest) error
	PrepareUpdate(ctx context.Context, name string, put api.InstancePut) (*instance.UpdateRequest, error)
	Update(ctx context.Context, req *instance.UpdateRequest) error
	Rename(ctx context.Context, oldName, newName string) error
	Delete(ctx context.Context, name string) error
	Start(ctx context.Context, name string) error
	Stop(ctx context.Context, name string, timeout time.Duration, force bool) error
	Restart(ctx context.Context, name string, timeout time.Duration, force bool) error
	Freeze(ctx context.Context, name string) error
	Unfreeze(ctx context.Context, name string) error
	// AutostartBarrier waits out an autostart's start under way (an evacuation's).
	AutostartBarrier()

	// Publishing.
	CheckPublishable(ctx context.Context, name, snap string) error
	Publish(ctx context.Context, name, snap string, props map[string]string, compression string, w io.Writer) error

	// Files, exec, console and logs.
	OpenFiles(ctx context.Context, name string) (*session.Files, error)
	ExecEnv(ctx context.Context, name string, req map[string]string, uid uint32) (map[string]string, error)
	Exec(ctx context.Context, name string, a session.ExecArgs) (execProcess, error)
	ExecOutputPath(name, file string) string
	ExecOutputs(name string) ([]string, error)
	Console(name string) (consoleMonitor, error)
	ConsoleLogPath(name string) string
	LogPath(name string) string
}

// snapshotService is what the handlers use of instance snapshots (*snapshot.Snapshots).
type snapshotService interface {
	List(ctx context.Context, name string) ([]api.InstanceSnapshot, error)
	Get(ctx context.Context, name, snap string) (*api.InstanceSnapshot, error)
	NextName(ctx context.Context, name string) (string, error)
	Create(ctx context.Context, name, snap string, expiresAt *time.Time) error
	Rename(ctx context.Context, name, snap, newName string) error
	SetExpiry(ctx context.Context, name, snap string, expiresAt time.Time) error
	Delete(ctx context.Context, name, snap string) error
	Restore(ctx context.Context, name, snap string) error
}

// backupService is what the handlers use of lxd/backup (*backup.Service).
type backupService interface {
	Dir() string
	Export(ctx context.Context, name string, instanceOnly bool, w io.Writer) error
	Import(ctx context.Context, file, name, pool string) (string, error)
	Rename(name, backup, newName string) error
}

// execProcess is a command started in an instance (*nsexec.Process).
type execProcess interface {
	// PTY is the terminal's master of an interactive command, else nil.
	PTY() *os.File
	ClosePTY()
	Resize(width, height int) error
	Signal(sig syscall.Signal) error
	Kill() error
	// Wait returns the exit code (128+N when killed by signal N).
	Wait() (int, error)
}

// consoleMonitor is a running instance's console (*container.Monitor).
type consoleMonitor interface {
	// ConsoleAttach takes the console: container.ErrConsoleBusy while
	// another client has it.
	ConsoleAttach() (net.Conn, error)
	ConsoleResize(width, height int) error
	ConsoleLog() ([]byte, error)
	ClearConsoleLog() error
}

// managerService adapts *instance.Manager and its services (Manager.View, .Runner,
// .Configurator, .Creator) to instanceService: exec and files go to the sessions, and
// Exec and Console return concrete types.
type managerService struct {
	*instance.Manager
	*instance.View
	*instance.Runner
	*instance.Configurator
	*instance.Creator
	sessions *session.Service
}

func (m managerService) OpenFiles(ctx context.Context, name string) (*session.Files, error) {
	return m.sessions.OpenFiles(ctx, name)
}

func (m managerService) ExecEnv(ctx context.Context, name string, req map[string]string, uid uint32) (map[string]string, error) {
	return m.sessions.ExecEnv(ctx, name, req, uid)
}

func (m managerService) Exec(ctx context.Context, name string, a session.ExecArgs) (execProcess, error) {
	p, err := m.sessions.Exec(ctx, name, a)
	if err != nil {
		return nil, err
	}

	return p, nil
}

func (m managerService) Console(name string) (consoleMonitor, error) {
	mon, err := m.Manager.Console(name)
	if err != nil {
		return nil, err
	}

	return mon, nil
}

// networkService is what the handlers use of lxd/networks (*networks.Service).
type poolService interface {
	List(ctx context.Context) ([]api.StoragePool, error)
	Get(ctx context.Context, name string) (*api.StoragePool, error)
	Resources(ctx context.Context, name string) (*api.ResourcesStoragePool, error)
	Create(ctx context.Context, req api.StoragePoolsPost) error
	Update(ctx context.Context, name, ifMatch string, req api.StoragePoolPut, patch bool) error
	Delete(ctx context.Context, name string) error

	// The pools' drivers, where instances (instance.Pools) and images (imagestore.Pools) live.
	Default() storage.Driver
	Driver(name string) (storage.Driver, error)
	Drivers() map[string]storage.Driver
}

type networkService interface {
	List(ctx context.Context) ([]api.Network, error)
	// Errored lists the managed networks whose last start failed.
	Errored() []string
	Get(ctx context.Context, name string) (*api.Network, error)
	State(name string) (*api.NetworkState, error)
	Create(ctx context.Context, req api.NetworksPost) error
	Update(ctx context.Context, name, ifMatch string, req api.NetworkPut, patch bool) error
	Delete(ctx context.Context, name string) error
	Rename(ctx context.Context, name, newName string) error
	Leases(ctx context.Context, name string) ([]api.NetworkLease, error)
	Forwards(ctx context.Context, name string) ([]api.NetworkForward, error)
	Forward(ctx context.Context, name, listen string) (*api.NetworkForward, error)
	CreateForward(ctx context.Context, name string, req api.NetworkForwardsPost) error
	UpdateForward(ctx context.Context, name, listen, ifMatch string, put api.NetworkForwardPut, patch bool) error
	DeleteForward(ctx context.Context, name, listen string) error
	ACLs(ctx context.Context) ([]api.NetworkACL, error)
	ACL(ctx context.Context, name string) (*api.NetworkACL, error)
	CreateACL(ctx context.Context, req api.NetworkACLsPost) error
	UpdateACL(ctx context.Context, name, ifMatch string, put api.NetworkACLPut, patch bool) error
	RenameACL(ctx context.Context, name, newName string) error
	DeleteACL(ctx context.Context, name string) error
}
