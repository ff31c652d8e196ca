package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/cluster"
	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/events"
	"github.com/berth-dev/berth/lxd/imagestore"
	"github.com/berth-dev/berth/lxd/instance"
	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/lxd/pools"
	"github.com/berth-dev/berth/lxd/profiles"
	"github.com/berth-dev/berth/lxd/projects"
	"github.com/berth-dev/berth/lxd/volumes"
	"github.com/berth-dev/berth/lxd/warnings"
	"github.com/berth-dev/berth/shared/api"
)

// The client and CLI tests run this package's test binary as a fake berthd:
// the real router, handlers, responses, operations, events, image store,
// profiles and database, over fake instances (fake_instances_test.go) and
// networks. They build it with `go test -c` and start it with
// fakeDaemonEnv naming a JSON fakeConfig (client/internal/testdaemon).

// fakeDaemonEnv names the config file of a fake daemon run.
const fakeDaemonEnv = "BERTH_FAKE_DAEMON"

// fakeConfig seeds a fake daemon. client/internal/testdaemon writes it.
type fakeConfig struct {
	Dir string `json:"dir"` // state directory; the socket is Dir/unix.socket

	// OpDelay is how long instance actions (create, start, stop, ...) take.
	OpDelay time.Duration `json:"op_delay"`
	// FailStart, when set, fails every start with this message.
	FailStart string `json:"fail_start"`
	// ConsoleLog is every instance's console log.
	ConsoleLog string `json:"console_log"`

	Instances []struct {
		Name   string `json:"name"`
		Status string `json:"status"` // Running, Stopped or Frozen
	} `json:"instances"`
	Images []struct {
		Fingerprint string   `json:"fingerprint"`
		Aliases     []string `json:"aliases"`
	} `json:"images"`
	// Cluster, when set, makes the daemon the first of these members (fake_cluster_test.go).
	Cluster []fakeMember `json:"cluster"`
}

func TestMain(m *testing.M) {
	path := os.Getenv(fakeDaemonEnv)
	if path != "" {
		err := runFakeDaemon(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "fake berthd: %v\n", err)
			os.Exit(1)
		}

		os.Exit(0)
	}

	os.Exit(m.Run())
}

// runFakeDaemon serves until SIGTERM or until its stdin closes (the test
// that started it is gone).
func runFakeDaemon(configPath string) error {
	data, err := os.ReadFile(configPath)
	if err != nil {
		return err
	}

	var cfg fakeConfig

	err = json.Unmarshal(data, &cfg)
	if err != nil {
		return fmt.Errorf("reading %s: %w", configPath, err)
	}

	d, err := newFakeDaemon(context.Background(), cfg)
	if err != nil {
		return err
	}

	defer d.db.Close()

	l, err := listenUnix(filepath.Join(cfg.Dir, "unix.socket"))
	if err != nil {
		return err
	}

	srv := d.unixServer()

	go func() {
		sigs := make(chan os.Signal, 1)
		signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)

		stdinClosed := make(chan struct{})
		go func() {
			_, _ = os.Stdin.Read(make([]byte, 1))
			close(stdinClosed)
		}()

		select {
		case <-sigs:
		case <-stdinClosed:
		}

		_ = srv.Close()
	}()

	fmt.Println("ready")

	err = srv.Serve(l)
	if err == http.ErrServerClosed {
		return nil
	}

	return err
}

// newFakeDaemon builds a Daemon over fake instances and networks in cfg.Dir.
func newFakeDaemon(ctx context.Context, cfg fakeConfig) (*Daemon, error) {
	level := slog.LevelWarn
	if os.Getenv("BERTH_FAKE_DEBUG") != "" {
		level = slog.LevelDebug
	}

	d := &Daemon{
		dir:       cfg.Dir,
		log:       slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})),
		startedAt: time.Now(),
		poolName:  "default",
		pool:      fakePool{},
	}

	var err error

	d.db, err = db.Open(ctx, cfg.Dir)
	if err != nil {
		return nil, err
	}

	err = seedFakeDB(ctx, d.db, cfg)
	if err != nil {
		return nil, err
	}

	err = seedFakeCluster(ctx, d, cfg)
	if err != nil {
		return nil, err
	}

	// As openDB does: a state directory without local.db is a host never clustered.
	d.cluster, err = cluster.Open(ctx, cluster.Config{Dir: cfg.Dir, Log: d.log})
	if err != nil {
		return nil, err
	}

	d.cluster.SetDB(d.db)
	d.events = events.NewServer(d.log)
	d.ops = operations.NewRegistry(d.events, d.log)
	d.warnings = warnings.New(d.db, d.log, nil)
	err = d.initRemote(ctx)
	if err != nil {
		return nil, err
	}

	// The real pool records over the seeded default pool (a dir pool in cfg.Dir); the
	// instances' storage stays d.pool.
	poolSvc, err := pools.Start(ctx, cfg.Dir, d.db, d.log, func(string, string, map[string]any) {})
	if err != nil {
		return nil, err
	}

	d.pools = poolSvc
	d.volumes, err = volumes.Start(ctx, cfg.Dir, d.db, poolSvc, d.log, func(string, string, map[string]any) {})
	if err != nil {
		return nil, err
	}

	d.images, err = imagestore.New(filepath.Join(cfg.Dir, "images"), d.db, imagestore.OnePool{Driver: d.pool}, d.log)
	if err != nil {
		return nil, err
	}

	fi := newFakeInstances(cfg, d.db)
	d.instances = fi
	d.networks = fakeNetworks{}
	d.profiles = profiles.New(d.db, fi, func(action, url string, meta map[string]any) {
		d.events.SendLifecycle("default", action, url, meta)
	})
	d.projects = projects.New(d.db, instance.ProjectUsage, func(action, url string, meta map[string]any) {
		d.events.SendLifecycle("default", action, url, meta)
	})

	return d, nil
}

// seedFakeDB records the storage pool and cfg's images.
func seedFakeDB(ctx context.Context, d *db.DB, cfg fakeConfig) error {
	return d.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		_, err := tx.CreateStoragePool(ctx, db.StoragePool{Name: "default", Driver: "dir",
			Config: map[string]string{"source": filepath.Join(cfg.Dir, "storage-pools", "default")}})
		if err != nil {
			return err
		}

		now := time.Now().UTC()

		for _, img := range cfg.Images {
			_, err = tx.CreateImage(ctx, db.Image{
				Fingerprint: img.Fingerprint, Filename: "img.tar.gz", Size: 1 << 20, Architecture: "x86_64",
				Type: api.InstanceTypeContainer, CreatedAt: now, UploadedAt: now,
				Properties: map[string]string{"description": "Fake image " + img.Fingerprint[:4]},
			})
			if err != nil {
				return err
			}

			for _, a := range img.Aliases {
				err = tx.CreateImageAlias(ctx, "default", a, img.Fingerprint, "", api.InstanceTypeContainer)
				if err != nil {
					return err
				}
			}
		}

		return nil
	})
}
