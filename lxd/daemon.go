package main

import (
	"context"
	"errors"
	"fmt"
	"github.com/berth-dev/berth/lxd/container"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/berth-dev/berth/lxd/backup"
	"github.com/berth-dev/berth/lxd/cgroup"
	"github.com/berth-dev/berth/lxd/cluster"
	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/device"
	"github.com/berth-dev/berth/lxd/events"
	"github.com/berth-dev/berth/lxd/imagestore"
	"github.com/berth-dev/berth/lxd/instance"
	"github.com/berth-dev/berth/lxd/listener"
	"github.com/berth-dev/berth/lxd/lxcfs"
	"github.com/berth-dev/berth/lxd/migration"
	"github.com/berth-dev/berth/lxd/networks"
	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/lxd/pools"
	"github.com/berth-dev/berth/lxd/profiles"
	"github.com/berth-dev/berth/lxd/projects"
	"github.com/berth-dev/berth/lxd/session"
	"github.com/berth-dev/berth/lxd/storage"
	"github.com/berth-dev/berth/lxd/sys"
	"github.com/berth-dev/berth/lxd/trust"
	"github.com/berth-dev/berth/lxd/tuning"
	"github.com/berth-dev/berth/lxd/volumes"
	"github.com/berth-dev/berth/lxd/warnings"
)

// Daemon holds berthd's subsystems. Handlers reach them through it.
type Daemon struct {
	dir        string
	log        *slog.Logger
	db         *db.DB
	events     *events.Server
	ops        *operations.Registry
	pool       storage.Driver // the default pool's driver: images are imported there
	poolName   string
	pools      poolService
	volumes    volumeService
	images     *imagestore.Store
	instances  instanceService
	migrations migrationService // nil: migration is not served (the handlers' fakes)
	snapshots  snapshotService
	backups    backupService
	networks   networkService
	profiles   *profiles.Service
	projects   *projects.Service
	warnings   *warnings.Service
	cgroups    cgroup.Layout
	startedAt  time.Time
	exeFile    *os.File // the sealed copy monitors are started from
	exePath    string   // its path: monitors are started from it, and a restart execs it
	cluster    *cluster.Service
	restart    chan struct{} // closed to re-exec the daemon (cluster enable, join)
	restartMu  sync.Once
	metrics    metricsState
	forward    *clusterForward // nil unless clustered (cluster_forward.go)
	// membership is the cluster service (d.cluster, issue 16) for the member handlers
	// and placement; nil on a host never clustered (cluster_members.go).
	membership membership

	// The API's router, built once (apiHandler).
	apiOnce sync.Once
	api     http.Handler

	// The HTTPS API (daemon_remote.go).
	cert            *listener.Cert
	trust           *trust.Store
	tokens          *trust.Tokens
	audit           *trust.Audit
	https           *listener.Endpoint
	metricsListener *listener.Endpoint

	// The server configuration (server_config.go): configWriteMu serialises changes,
	// configMu guards config.
	configWriteMu sync.Mutex
	configMu      sync.RWMutex
	config        map[string]string

	preseed preseedState // berthd --preseed (preseed.go)
}

// run starts the daemon and serves until SIGTERM or SIGINT. Containers keep running when
// it returns: their monitors are separate processes.
func run(dir string, log *slog.Logger, preseed *preseedFile) error {
	d := &Daemon{dir: dir, log: log, startedAt: time.Now(), restart: make(chan struct{})}
	ctx := context.Background()

	err := d.init(ctx)
	if err != nil {
		if d.cluster != nil {
			d.cluster.Close()
		}

		return err
	}

	defer d.cluster.Close()
	defer d.db.Close()
	if d.cluster.Enabled() {
		// Requests, lists, events and images across members (cluster_forward.go).
		d.startForwarding(clusterDirectory{d.cluster}, d.placeMemberName)
		defer d.stopForwarding()
	}

	socket := filepath.Join(dir, "unix.socket")
	l, err := listenUnix(socket)
	if err != nil {
		return err
	}

	srv := d.unixServer()
	d.startListeners()
	defer d.stopListeners()
	beats, stopBeats := context.WithCancel(ctx)
	defer stopBeats()
	d.startHeartbeats(beats)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		stopping := false
		select {
		case s := <-sigs:
			log.Info("shutting down, containers keep running", "signal", s.String())
			stopping = true
		case <-d.restart:
			log.Info("restarting to apply the cluster change, containers keep running")
		}

		sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		stopBeats()
		if stopping {
			d.handover(sctx) // before the API stops: requests in flight still reach the database
		}

		_ = srv.Shutdown(sctx)
	}()

	d.startPreseed(preseed, socket, sigs)
	log.Info("berthd ready", "socket", socket, "pid", os.Getpid(), "storage", d.pool.Name(), "cgroups", d.cgroups.Mode.String())
	err = srv.Serve(l)
	_ = os.Remove(socket)
	if errors.Is(err, http.ErrServerClosed) {
		if d.restarting() {
			return d.reexec()
		}

		return d.preseedFailure()
	}

	return err
}

// init prepares the state directory and subsystems, and reconciles what the last run left.
func (d *Daemon) init(ctx context.Context) error {
	sealed := startSealing()
	for _, sub := range []string{"", "instances", "images", "storage-pools"} {
		err := os.MkdirAll(filepath.Join(d.dir, sub), 0o711)
		if err != nil {
			return fmt.Errorf("creating state directory: %w", err)
		}
	}

	// Container roots map to unprivileged host uids that must traverse the state directory
	// to reach their rootfs (LXD does the same).
	err := os.Chmod(d.dir, 0o711)
	if err != nil {
		return fmt.Errorf("setting mode of state directory: %w", err)
	}

	d.cgroups, err = cgroup.Detect()
	if err != nil {
		return fmt.Errorf("detecting cgroups: %w", err)
	}

	if d.cgroups.Warning != "" {
		d.log.Warn("cgroups", "warning", d.cgroups.Warning)
	}

	err = d.openDB(ctx)
	if err != nil {
		return err
	}

	tuned := tuning.AtStart(ctx, d.db, d.log) // before any container: their limits are shared

	ids, err := d.subordinateIDs(tuned.Tried)
	if err != nil {
		return err
	}

	err = d.initStorage(ctx)
	if err != nil {
		return err
	}

	err = container.CheckInitExe()
	if err != nil {
		d.log.Warn("container init", "warning", err)
	}

	d.events = events.NewServer(d.log)
	d.ops = operations.NewRegistry(d.events, d.log)
	d.warnings = warnings.New(d.db, d.log, func(action, url string, meta map[string]any) {
		d.events.SendLifecycle("default", action, url, meta)
	})
	d.checkHost(ctx, tuned)
	err = d.initRemote(ctx)
	if err != nil {
		return err
	}

	d.images, err = imagestore.New(filepath.Join(d.dir, "images"), d.db, d.pools, d.log)
	if err != nil {
		return err
	}

	err = d.images.Reconcile(ctx)
	if err != nil {
		return fmt.Errorf("reconciling images: %w", err)
	}

	emit := func(action, url string, meta map[string]any) {
		d.events.SendLifecycle("default", action, url, meta)
	}

	nets, err := networks.Start(ctx, d.dir, d.db, d.log, emit)
	if err != nil {
		return err
	}

	d.networks = nets
	d.checkNetworks(ctx)

	// The sealed copy stays open for the daemon's lifetime: monitors are started from it.
	exe, exeFile, err := sealed.wait()
	if err != nil {
		return fmt.Errorf("sealing own binary: %w", err)
	}

	d.exeFile = exeFile // keep it referenced: a collected *os.File closes its fd
	d.exePath = exe

	var backups *backup.Service
	mgr := instance.NewManager(instance.Config{
		Dir:      d.dir,
		DB:       d.db,
		Pools:    d.pools,
		PoolName: d.poolName,
		Exe:      exe,
		IDs:      ids,
		Images:   d.images,
		Events:   d.events,
		Log:      d.log,
		Networks: nets.Manager(),

		CgroupParent: cgroup.ParentFor(d.dir),
		OnDelete:     func(name string) { backups.Forget(name) },
		MemberID:     d.selfMemberID(),
	})

	backups = backup.New(backup.Config{Dir: d.dir, Instances: mgr.Creator(), Log: d.log})
	backups.RemoveLeftovers()
	d.instances = managerService{
		Manager: mgr, View: mgr.View(), Runner: mgr.Runner(), Configurator: mgr.Configurator(), Creator: mgr.Creator(),
		sessions: session.New(exe, mgr),
	}
	d.snapshots = mgr.Snapshots()
	d.migrations = mgr.Creator()
	err = migration.CleanJails(d.migrationJails())
	if err != nil {
		d.log.Warn("removing the jails of interrupted migrations", "err", err)
	}
	if v, ok := d.volumes.(interface{ SetInstanceBusy(func(string) bool) }); ok {
		v.SetInstanceBusy(mgr.Busy) // a volume restore is refused under running instances
	}

	d.backups = backups
	d.profiles = profiles.New(d.db, mgr.Configurator(), emit)
	d.projects = projects.New(d.db, instance.ProjectUsage, emit)

	err = mgr.Runner().Reconcile(ctx)
	if err != nil {
		return fmt.Errorf("reconciling instances: %w", err)
	}

	names, _ := mgr.View().Names(ctx)
	for _, n := range names {
		mgr.Runner().Resume(n) // port filters of this version; NICs and devices after reboots inside
	}

	d.startLXCFS()
	go mgr.Snapshots().RunPruner(context.Background())
	go d.runImageCachePruner(context.Background())
	go func() {
		if d.selfEvacuated(context.Background()) {
			d.log.Info("this cluster member is evacuated: its instances stay stopped until it is restored")
			return
		}

		err := mgr.Runner().Autostart(context.Background(), d.selfEvacuated)
		if err != nil {
			d.log.Warn("autostarting instances", "err", err)
		}
	}()

	return nil
}

// sealing is the sealed copy of the daemon's own binary (sys.SealedSelfExe) being made
// while the rest of the start goes on: a copy of ~33 MB, ~25 ms of every start on the
// 2-core VM, that nothing needs before the instance manager.
type sealing struct {
	done chan struct{}
	path string
	file *os.File
	err  error
}

func startSealing() *sealing {
	s := &sealing{done: make(chan struct{})}
	go func() {
		defer close(s.done)
		s.path, s.file, s.err = sys.SealedSelfExe()
	}()

	return s
}

// wait returns the copy's path and file once it is made.
func (s *sealing) wait() (string, *os.File, error) {
	<-s.done
	return s.path, s.file, s.err
}

// startLXCFS supervises lxcfs when it is installed and waits a little for it to mount, so
// that containers started from now on (autostart first) get its view of /proc.
func (d *Daemon) startLXCFS() {
	ready := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		done <- lxcfs.Supervise(context.Background(), lxcfs.Dir(), d.log, func() { close(ready) })
	}()

	select {
	case <-ready:
		d.warnings.Resolve(context.Background(), warnings.LXCFSUnavailable, "lxcfs")
	case err := <-done:
		d.log.Info("containers get the host's /proc view", "lxcfs", err)
		d.warnings.Record(context.Background(), warnings.LXCFSUnavailable, "lxcfs", fmt.Sprintf("containers get the host's /proc view: %v", err))
		return
	case <-time.After(5 * time.Second):
		d.log.Warn("lxcfs is not up yet; containers started before it is get the host's /proc view")
	}
}

// initStorage loads the storage pools (pools.Start), creating the default one with the
// best driver on first start; images are imported into the default pool, and instances
// live on the pool their root disk names.
func (d *Daemon) initStorage(ctx context.Context) error {
	emit := func(action, url string, meta map[string]any) {
		d.events.SendLifecycle("default", action, url, meta)
	}

	var opts []pools.Option
	if d.cluster.Enabled() {
		opts = append(opts, pools.Clustered()) // pool directories are each member's own
	}

	svc, err := pools.Start(ctx, d.dir, d.db, d.log, emit, opts...)
	if err != nil {
		return err
	}

	d.pools = svc
	d.poolName = pools.DefaultName
	d.pool = svc.Default()

	vols, err := volumes.Start(ctx, d.dir, d.db, svc, d.log, d.volumeEmit)
	if err != nil {
		return err
	}

	d.volumes = vols
	device.SetVolumes(vols)

	return nil
}

// listenUnix binds the API socket. It refuses a symlink or a non-socket file at the path,
// and a socket another live daemon still answers on.
func listenUnix(path string) (net.Listener, error) {
	fi, err := os.Lstat(path)
	if err == nil {
		if fi.Mode()&os.ModeSymlink != 0 {
			return nil, fmt.Errorf("refusing to start: %s is a symlink", path)
		}

		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("refusing to start: %s exists and is not a socket", path)
		}

		c, err := net.DialTimeout("unix", path, time.Second)
		if err == nil {
			_ = c.Close()
			return nil, fmt.Errorf("refusing to start: another berthd is serving %s", path)
		}

		err = os.Remove(path)
		if err != nil {
			return nil, fmt.Errorf("removing stale socket: %w", err)
		}
	}

	// Create with a restrictive umask so there is no window with a wider mode.
	old := syscall.Umask(0o117)
	l, err := net.Listen("unix", path)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listening on %s: %w", path, err)
	}

	err = os.Chmod(path, 0o660)
	if err != nil {
		_ = l.Close()
		return nil, err
	}

	return l, nil
}
