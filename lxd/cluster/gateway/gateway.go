package gateway

import (
	"context"
	"crypto/tls"
	"database/sql"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	dqlite "github.com/canonical/go-dqlite"
	"github.com/canonical/go-dqlite/app"
	"github.com/canonical/go-dqlite/client"
	dqdriver "github.com/canonical/go-dqlite/driver"
)

// Defaults of Config.
const (
	DefaultNetworkLatency  = 20 * time.Millisecond
	DefaultRolesAdjustment = 2 * time.Second
	DefaultVoters          = 3
	DefaultStandBys        = 2
	// A snapshot every 128 commits, keeping 512 entries behind it: about 5 MB of raft
	// log (each commit replicates its WAL pages, ~8 KB) instead of the ~70 MB the
	// 1024/8192 defaults keep.
	DefaultSnapshotThreshold = 128
	DefaultSnapshotTrailing  = 512
)

// databaseName is the name of the global database inside dqlite.
const databaseName = "global"

// maxConns bounds connections to the leader. Writes are serialised by lxd/db anyway;
// a few connections let reads run beside a write.
const maxConns = 4

// Files the app package keeps in the node directory.
const (
	infoFile  = "info.yaml"
	storeFile = "cluster.yaml"
)

// Config describes this member's node.
type Config struct {
	// Dir is the node's directory (<state>/database/global), created 0700.
	Dir string
	// Address is this member's raft address (RaftAddress of its API address). It is
	// recorded on bootstrap/join; Open may leave it empty.
	Address string
	// Cert is the cluster certificate and key: presented to, and required from, every
	// peer.
	Cert tls.Certificate
	// NetworkLatency is the expected one-way latency between members: heartbeat 1.5x,
	// election timeout 15x. Default 20 ms (election ~300 ms).
	NetworkLatency time.Duration
	// RolesAdjustment is how often the leader rebalances voters and stand-bys (and
	// every member refreshes its list of members). Default 2 s.
	RolesAdjustment time.Duration
	// Voters (odd, >= 3) and StandBys wanted. Defaults 3 and 2. All members must agree.
	Voters, StandBys int
	// SnapshotThreshold and SnapshotTrailing tune raft snapshots (defaults above).
	SnapshotThreshold, SnapshotTrailing uint64
	// Logger receives dqlite's warnings and errors; nil means slog.Default().
	Logger *slog.Logger
}

// Gateway is a running dqlite node and the handle to the global database.
type Gateway struct {
	cfg     Config
	app     *app.App
	db      *sql.DB
	dialTLS *tls.Config
	tls     *tlsState // the certificate dialTLS and the listener use (SetCert)
	store   *fileStore
	log     *slog.Logger
	// socket is the abstract unix socket the engine listens on (see newApp).
	socket string

	mu    sync.Mutex
	local *client.Client // cached client of the local node, for leader queries

	flushMu sync.Mutex

	leader leaderState

	closeOnce sync.Once
	closeErr  error
}

// Bootstrap creates the first member of a new cluster in cfg.Dir (which must not hold
// a node yet) and waits until it leads.
func Bootstrap(ctx context.Context, cfg Config) (*Gateway, error) {
	if cfg.Address == "" {
		return nil, errors.New("bootstrapping cluster database: raft address required")
	}

	return start(ctx, cfg, nil, modeNew)
}

// Join creates a new member in cfg.Dir (which must not hold a node yet) that joins
// the cluster whose members' raft addresses are given: it asks the leader to add it,
// takes a role if one is wanted, and returns once that is done (or ctx ends).
func Join(ctx context.Context, cfg Config, cluster []string) (*Gateway, error) {
	if cfg.Address == "" {
		return nil, errors.New("joining cluster database: raft address required")
	}

	if len(cluster) == 0 {
		return nil, errors.New("joining cluster database: no member addresses given")
	}

	return start(ctx, cfg, cluster, modeNew)
}

// Open restarts the node kept in cfg.Dir. It does not wait for a leader (the other
// members may be restarting too): database calls fail with ErrNoLeader until there is
// one; Ready waits for it.
func Open(ctx context.Context, cfg Config) (*Gateway, error) {
	return start(ctx, cfg, nil, modeExisting)
}

type mode int

const (
	modeNew mode = iota
	modeExisting
)

func start(ctx context.Context, cfg Config, cluster []string, m mode) (*Gateway, error) {
	if cfg.Dir == "" {
		return nil, errors.New("cluster database directory required")
	}

	tlsState, listenTLS, dialTLS, err := tlsConfigs(cfg.Cert)
	if err != nil {
		return nil, err
	}

	setDefaults(&cfg)

	err = os.MkdirAll(cfg.Dir, 0o700)
	if err != nil {
		return nil, fmt.Errorf("creating cluster database directory: %w", err)
	}

	err = os.Chmod(cfg.Dir, 0o700)
	if err != nil {
		return nil, fmt.Errorf("restricting cluster database directory: %w", err)
	}

	_, err = os.Stat(filepath.Join(cfg.Dir, infoFile))
	exists := err == nil
	switch {
	case m == modeNew && exists:
		return nil, fmt.Errorf("cluster database directory %q already holds a node", cfg.Dir)
	case m == modeExisting && !exists:
		return nil, fmt.Errorf("cluster database directory %q holds no node", cfg.Dir)
	}

	g := &Gateway{
		cfg:     cfg,
		dialTLS: dialTLS,
		tls:     tlsState,
		store:   &fileStore{path: filepath.Join(cfg.Dir, storeFile)},
		log:     cfg.Logger,
	}

	opts := []app.Option{
		app.WithTLS(listenTLS, dialTLS),
		app.WithVoters(cfg.Voters),
		app.WithStandBys(cfg.StandBys),
		app.WithRolesAdjustmentFrequency(cfg.RolesAdjustment),
		app.WithNetworkLatency(cfg.NetworkLatency),
		app.WithSnapshotParams(dqlite.SnapshotParams{Threshold: cfg.SnapshotThreshold, Trailing: cfg.SnapshotTrailing}),
		app.WithLogFunc(g.logf),
	}

	if cfg.Address != "" {
		opts = append(opts, app.WithAddress(cfg.Address))
	}

	if len(cluster) > 0 {
		opts = append(opts, app.WithCluster(cluster))
	}

	a, socket, err := newApp(cfg.Dir, opts)
	if err != nil {
		return nil, fmt.Errorf("starting cluster database node: %w", err)
	}

	g.app = a
	g.socket = socket

	drv, err := dqdriver.New(g.store,
		dqdriver.WithDialFunc(g.dial),
		dqdriver.WithConnectionTimeout(connectionTimeout),
		dqdriver.WithAttemptTimeout(attemptTimeout),
		dqdriver.WithConnectionBackoffFactor(50*time.Millisecond),
		dqdriver.WithConnectionBackoffCap(250*time.Millisecond),
		dqdriver.WithLogFunc(g.driverLogf),
	)
	if err != nil {
		_ = a.Close()
		return nil, fmt.Errorf("creating cluster database driver: %w", err)
	}

	inner, err := drv.OpenConnector(databaseName)
	if err != nil {
		_ = a.Close()
		return nil, fmt.Errorf("creating cluster database connector: %w", err)
	}

	g.db = sql.OpenDB(&connector{g: g, inner: inner})
	g.db.SetMaxOpenConns(maxConns)
	g.db.SetMaxIdleConns(maxConns)

	if m == modeNew {
		err = g.Ready(ctx)
		if err != nil {
			// The directory held no node before: leave none behind, so the member
			// can try again (a half-joined node cannot be restarted anyway).
			_ = g.Close()
			_ = os.RemoveAll(cfg.Dir)

			return nil, err
		}
	}

	return g, nil
}

// socketMu serialises newApp, which sets a process-wide variable.
var (
	socketMu  sync.Mutex
	socketSeq atomic.Uint64
)

// newApp starts the app with a local socket name of its own. In TLS mode go-dqlite
// binds the engine to the abstract unix socket "@dqlite-<node id>", and every
// bootstrapped node has the same id: two nodes in one network namespace (two
// processes, tests in parallel, or two nodes in one process) would collide. The only
// knob this go-dqlite has is the snap instance name it puts into the socket name.
//
// It returns the socket's name, as go-dqlite forms it ("@snap.<instance>.dqlite-<id>").
func newApp(dir string, opts []app.Option) (*app.App, string, error) {
	socketMu.Lock()
	defer socketMu.Unlock()

	const env = "SNAP_INSTANCE_NAME"
	prev, had := os.LookupEnv(env)
	defer func() {
		if had {
			_ = os.Setenv(env, prev)
		} else {
			_ = os.Unsetenv(env)
		}
	}()

	instance := fmt.Sprintf("berth-%d-%d", os.Getpid(), socketSeq.Add(1))

	err := os.Setenv(env, instance)
	if err != nil {
		return nil, "", fmt.Errorf("naming the local dqlite socket: %w", err)
	}

	a, err := app.New(dir, opts...)
	if err != nil {
		return nil, "", err
	}

	return a, fmt.Sprintf("@snap.%s.dqlite-%d", instance, a.ID()), nil
}

func setDefaults(cfg *Config) {
	if cfg.NetworkLatency == 0 {
		cfg.NetworkLatency = DefaultNetworkLatency
	}

	if cfg.RolesAdjustment == 0 {
		cfg.RolesAdjustment = DefaultRolesAdjustment
	}

	if cfg.Voters == 0 {
		cfg.Voters = DefaultVoters
	}

	if cfg.StandBys == 0 {
		cfg.StandBys = DefaultStandBys
	}

	if cfg.SnapshotThreshold == 0 {
		cfg.SnapshotThreshold = DefaultSnapshotThreshold
	}

	if cfg.SnapshotTrailing == 0 {
		cfg.SnapshotTrailing = DefaultSnapshotTrailing
	}

	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
}

// Ready waits until the node has joined (if it is new), taken its role and the
// global database answers.
func (g *Gateway) Ready(ctx context.Context) error {
	err := g.app.Ready(ctx)
	if err != nil {
		return fmt.Errorf("waiting for the cluster database node: %w", err)
	}

	for {
		pctx, cancel := context.WithTimeout(ctx, 2*connectionTimeout)
		err = g.db.PingContext(pctx)
		cancel()
		if err == nil {
			return nil
		}

		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for the cluster database: %w", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// DB is the global database. Use it through lxd/db.OpenCluster.
func (g *Gateway) DB() *sql.DB { return g.db }

// ID is this node's raft id.
func (g *Gateway) ID() uint64 { return g.app.ID() }

// Address is this node's raft address.
func (g *Gateway) Address() string { return g.app.Address() }

// Close stops the node (call Handover first to leave gracefully). Later calls
// return the first one's result: libdqlite aborts the process on a second stop.
func (g *Gateway) Close() error {
	g.closeOnce.Do(func() { g.closeErr = g.close() })

	return g.closeErr
}

func (g *Gateway) close() error {
	errDB := g.db.Close()

	g.mu.Lock()
	if g.local != nil {
		_ = g.local.Close()
		g.local = nil
	}
	g.mu.Unlock()

	err := g.app.Close()
	if err != nil {
		return fmt.Errorf("stopping cluster database node: %w", err)
	}

	if errDB != nil {
		return fmt.Errorf("closing cluster database: %w", errDB)
	}

	return nil
}

// flushIdle drops the idle connections: after a timeout the others may point at the
// same vanished leader.
//
// It waits (briefly) for the flush: database/sql retries a call that failed with
// ErrBadConn at once, on a pooled connection, which must not be another one to the
// same silent leader.
func (g *Gateway) flushIdle() {
	done := make(chan struct{})
	go func() {
		defer close(done)

		g.flushMu.Lock()
		defer g.flushMu.Unlock()

		g.db.SetMaxIdleConns(0)
		g.db.SetMaxIdleConns(maxConns)
	}()

	select {
	case <-done:
	case <-time.After(flushWait):
	}
}

// flushWait bounds how long flushIdle waits for the pool.
const flushWait = 200 * time.Millisecond

func (g *Gateway) logf(l client.LogLevel, format string, a ...any) {
	var level slog.Level
	switch l {
	case client.LogError:
		level = slog.LevelError
	case client.LogWarn:
		level = slog.LevelWarn
	default:
		return
	}

	g.log.Log(context.Background(), level, "dqlite: "+fmt.Sprintf(format, a...), "node", g.cfg.Address)
}

// driverLogf logs the driver's leader search at debug level: every failed probe of a
// member is a warning to go-dqlite, dozens of them during one election.
func (g *Gateway) driverLogf(l client.LogLevel, format string, a ...any) {
	if l == client.LogNone {
		return
	}

	g.log.Debug("dqlite driver: "+fmt.Sprintf(format, a...), "node", g.cfg.Address)
}

// fileStore reads the member list the app package keeps up to date in cluster.yaml,
// so our driver follows joins and role changes without a second refresh loop.
type fileStore struct {
	path string
	mu   sync.Mutex
	last []client.NodeInfo
}

func (s *fileStore) Get(ctx context.Context) ([]client.NodeInfo, error) {
	s.mu.Lock()
	defer s.mu.Unlock()

	st, err := client.NewYamlNodeStore(s.path)
	if err == nil {
		nodes, err := st.Get(ctx)
		if err == nil && len(nodes) > 0 {
			s.last = nodes
		}
	}

	return append([]client.NodeInfo(nil), s.last...), nil
}

// Set is a no-op: the app package owns the file.
func (s *fileStore) Set(context.Context, []client.NodeInfo) error { return nil }
