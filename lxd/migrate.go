package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/lxd/instance"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/ws"
)

// The instance migration API (LXD's, lxd/migration speaks its protocol): the source is
// POST /1.0/instances/{name} with migration (instance_migrate.go), the target POST
// /1.0/instances with source type "migration" (instances_migrate.go). Each side has two
// websockets, control and fs: the side that holds them is a websocket operation whose
// metadata is exactly their secrets (what lxc reads back), the other side dials them.

// migrationService is what a migration uses of the instances: read access to one's
// trees (source), and a new instance whose trees arrive (target).
type migrationService interface {
	ReadTrees(ctx context.Context, name string, snapshots bool, fn func(ctx context.Context, t *instance.Trees) error) error
	CreateFromTrees(ctx context.Context, in instance.Incoming) error
	Snapshots(ctx context.Context, name string) (map[string]time.Time, error)
	RefreshFromTrees(ctx context.Context, r instance.Refresh) error
	RefreshCopy(ctx context.Context, src, dst string) error
}

// migrationStreams are the websockets of a migration, control first.
var migrationStreams = []string{"control", "fs"}

// migrationConnectTimeout is how long a side holding the websockets waits for the other.
const migrationConnectTimeout = 30 * time.Second

// migrationSession is the websockets a side holds, with their secrets as the
// operation's metadata.
func migrationSession() (*ws.Session, map[string]any) {
	sess := ws.NewSession(ws.Layout{Streams: migrationStreams, Required: migrationStreams})
	md := map[string]any{}
	for k, v := range sess.Secrets() {
		md[k] = v
	}

	return sess, md
}

// waitMigration waits for both websockets of sess.
func waitMigration(ctx context.Context, sess *ws.Session) error {
	deadline := time.Now().Add(migrationConnectTimeout)
	for {
		err := sess.Wait(ctx)
		if !errors.Is(err, ws.ErrConnectTimeout) || time.Now().After(deadline) {
			return err
		}
	}
}

// migrationOperation checks a peer's operation URL and secrets (https://HOST/1.0/operations/ID,
// control and fs) and returns its server URL and ID.
func migrationOperation(op string, secrets map[string]string) (string, string, error) {
	u, err := url.Parse(op)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" {
		return "", "", api.StatusErrorf(http.StatusBadRequest, "migration operation %q is not an https:// operation URL", op)
	}

	id, ok := strings.CutPrefix(u.Path, "/1.0/operations/")
	if !ok || id == "" || strings.Contains(id, "/") {
		return "", "", api.StatusErrorf(http.StatusBadRequest, "migration operation %q is not an https:// operation URL", op)
	}

	for _, name := range migrationStreams {
		if secrets[name] == "" {
			return "", "", api.StatusErrorf(http.StatusBadRequest, "migration secret %q missing", name)
		}
	}

	return "https://" + u.Host, id, nil
}

// dialMigration connects the websockets of a peer's migration operation, its server's
// certificate pinned (cert, PEM; empty: the system roots).
func dialMigration(ctx context.Context, op, cert string, secrets map[string]string) (*ws.Conn, *ws.Conn, error) {
	return dialMigrationAs(ctx, op, client.HTTPSArgs{ServerCert: []byte(cert)}, secrets)
}

// dialMigrationAs is dialMigration with the TLS of args (a cluster member presents the
// cluster certificate: cluster_move.go).
func dialMigrationAs(ctx context.Context, op string, args client.HTTPSArgs, secrets map[string]string) (*ws.Conn, *ws.Conn, error) {
	server, id, err := migrationOperation(op, secrets)
	if err != nil {
		return nil, nil, err
	}

	c, err := client.ConnectHTTPS(server, args)
	if err != nil {
		return nil, nil, err
	}

	dctx, cancel := context.WithTimeout(ctx, migrationConnectTimeout)
	defer cancel()

	control, err := c.DialOperationWebsocket(dctx, id, secrets["control"])
	if err != nil {
		return nil, nil, fmt.Errorf("connecting to the migration's control websocket: %w", err)
	}

	fs, err := c.DialOperationWebsocket(dctx, id, secrets["fs"])
	if err != nil {
		_ = ws.Close(control, "")
		return nil, nil, fmt.Errorf("connecting to the migration's fs websocket: %w", err)
	}

	return control, fs, nil
}

// migrationJails is where the rsync ends of migrations get their jails.
func (d *Daemon) migrationJails() string { return filepath.Join(d.dir, "migrate") }
