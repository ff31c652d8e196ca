package main

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/lxd/cluster"
	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/lxd/instance"
	"github.com/berth-dev/berth/lxd/migration"
	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
	"github.com/berth-dev/berth/shared/validate"
	"github.com/berth-dev/berth/shared/ws"
)

// Moving an instance between cluster members (issue 16): POST /1.0/instances/{name}
// ?target=MEMBER with {"migration": true}, as lxc move c1 [c2] --target m2 sends it
// (forwarded to the member the instance is on). As in LXD 5.0, a running instance is
// refused ("stop it first"), and so is one with backups (they are files of the member).
// The instance's trees travel to the target member over the migration protocol
// (lxd/migration, the same confined receiver as a move between servers), member to
// member with the cluster certificate; the target makes its storage from them and then,
// in one transaction, hands the existing row over to itself (instance.MemberMove). The
// instance keeps its row: name (or the new one), config, uuid, MAC addresses, profiles,
// snapshots; its id range and its NICs' host ends are the target's.

func init() {
	internalEndpoints = append(internalEndpoints, APIEndpoint{Path: "internal/cluster/move", Post: internalClusterMove})
}

// memberMover is what a move between members uses of the instances (*instance.Creator).
type memberMover interface {
	MoveOut(ctx context.Context, name string, send func(ctx context.Context, t *instance.Trees) error) error
	CreateFromTrees(ctx context.Context, in instance.Incoming) error
}

// moveIn is the body of POST /internal/cluster/move: the source member asks the target
// to receive instance Name (renamed NewName) from member From.
type moveIn struct {
	Name    string `json:"name"`
	NewName string `json:"new_name"`
	From    int64  `json:"from"`
}

// clusterMove answers POST /1.0/instances/{name}?target= with migration on the member
// the instance is on. The checks that need no work fail the request itself.
func clusterMove(d *Daemon, r *http.Request, key string, req api.InstancePost, target string) response.Response {
	if req.Pool != "" || req.Project != "" {
		return response.BadRequest(api.StatusErrorf(http.StatusBadRequest, "move to another cluster member and to another pool or project in two steps"))
	}

	if !d.clustered() {
		return response.BadRequest(api.StatusErrorf(http.StatusBadRequest, "target %q: this server is not clustered", target))
	}

	name := req.Name
	if name == "" {
		name = project.Name(key)
	}

	err := validate.InstanceName(name)
	if err != nil {
		return response.BadRequest(api.StatusErrorf(http.StatusBadRequest, "invalid instance name: %v", err))
	}

	newKey, err := project.KeyFor(projectOf(r), name)
	if err != nil {
		return response.BadRequest(api.StatusErrorf(http.StatusBadRequest, "invalid instance name: %v", err))
	}

	err = d.moveTargetAllowed(r, projectOf(r))
	if err != nil {
		return response.SmartError(err)
	}

	inst, err := d.instances.Get(r.Context(), key, false)
	if err != nil {
		return response.SmartError(err)
	}

	m, err := d.moveTarget(r.Context(), key, newKey, target)
	if err != nil {
		return response.SmartError(err)
	}

	if inst.StatusCode != api.Stopped {
		return response.BadRequest(api.StatusErrorf(http.StatusBadRequest, "instance %q is running: stop it before moving it to another cluster member", inst.Name))
	}

	return d.task("Moving instance", instanceResources(key), func(ctx context.Context, _ *operations.Operation) error {
		return d.moveToMember(ctx, key, newKey, m)
	})
}

// moveTargetAllowed applies LXD's restricted.cluster.target to a move: a restricted
// project's instances are not placed on a member by name, except by an administrator
// (or a member: evacuation and restore), as LXD allows.
func (d *Daemon) moveTargetAllowed(r *http.Request, proj string) error {
	if d.projects == nil || callerOf(r).Admin() {
		return nil
	}

	cfg, err := d.projects.Config(r.Context(), proj)
	if err != nil || !validate.IsTrue(cfg["restricted"]) || cfg["restricted.cluster.target"] == "allow" {
		return nil //nolint:nilerr // an unknown project is the instance lookup's 404
	}

	return api.StatusErrorf(http.StatusForbidden, "project %q is restricted: its instances cannot be moved to a named cluster member", proj)
}

// moveTarget checks that instance key (newKey once moved) can go to member target: a
// member that can take instances (online, not evacuated), not the one it is on, no other
// instance under the new name, no backups of it here. It returns the member.
func (d *Daemon) moveTarget(ctx context.Context, key, newKey, target string) (cluster.Member, error) {
	m, err := d.placeInstance(ctx, target)
	if err != nil {
		return cluster.Member{}, err
	}

	if m.ID == d.selfMemberID() {
		return cluster.Member{}, api.StatusErrorf(http.StatusBadRequest, "instance %q is already on cluster member %q", project.Name(key), m.Name)
	}

	if newKey != key {
		_, err = d.instances.Get(ctx, newKey, false)
		if err == nil {
			return cluster.Member{}, api.StatusErrorf(http.StatusConflict, "instance %q already exists", project.Name(newKey))
		}

		if !api.StatusErrorCheck(err, http.StatusNotFound) {
			return cluster.Member{}, err
		}
	}

	if d.backups != nil && hasBackups(filepath.Join(d.backups.Dir(), key)) {
		return cluster.Member{}, api.StatusErrorf(http.StatusBadRequest, "instance %q has backups: delete them before moving it to another cluster member", project.Name(key))
	}

	return m, nil
}

// hasBackups reports whether dir holds a backup (not a partial one).
func hasBackups(dir string) bool {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if !strings.HasPrefix(e.Name(), ".") {
			return true
		}
	}

	return false
}

// moveToMember moves stopped instance key to member m as newKey: the target is asked to
// receive it, and this member sends its trees under the instance lock (MoveOut), which
// removes the local copy once the row is the target's.
func (d *Daemon) moveToMember(ctx context.Context, key, newKey string, m cluster.Member) error {
	mover, ok := d.migrations.(memberMover)
	if !ok || d.forward == nil || d.cluster == nil || d.cluster.Cert() == nil {
		return api.StatusErrorf(http.StatusNotImplemented, "moving instances between cluster members is not supported by this server")
	}

	return mover.MoveOut(ctx, key, func(ctx context.Context, t *instance.Trees) error {
		control, fs, err := d.dialMoveIn(ctx, m, moveIn{Name: key, NewName: newKey, From: d.selfMemberID()})
		if err != nil {
			return err
		}

		defer func() { _ = ws.Close(control, ""); _ = ws.Close(fs, "") }()
		src := &migrationSource{d: d, name: key, snapshots: true}
		err = src.send(ctx, t, control, fs)
		if err != nil {
			return fmt.Errorf("moving instance %q to cluster member %q: %w", project.Name(key), m.Name, err)
		}

		d.log.Info("instance moved to another cluster member", "instance", key, "as", newKey, "member", m.Name)
		return nil
	})
}

// dialMoveIn asks member m to receive an instance (POST /internal/cluster/move, with the
// cluster certificate) and connects to the websockets of the operation it answers.
func (d *Daemon) dialMoveIn(ctx context.Context, m cluster.Member, body moveIn) (*ws.Conn, *ws.Conn, error) {
	out, err := d.memberCall(ctx, m, http.MethodPost, "/internal/cluster/move", nil, body)
	if err != nil {
		return nil, nil, err
	}

	op, err := out.MetadataAsOperation()
	if err != nil {
		return nil, nil, fmt.Errorf("reading cluster member %q's answer: %w", m.Name, err)
	}

	secrets := map[string]string{}
	for _, s := range migrationStreams {
		v, _ := op.Metadata[s].(string)
		secrets[s] = v
	}

	// As a member (the cluster certificate presented): the arrival's websockets take
	// only a member (memberOnlyConnect).
	c := d.cluster.Cert()
	keyDER, err := x509.MarshalPKCS8PrivateKey(c.KeyPair.PrivateKey)
	if err != nil {
		return nil, nil, fmt.Errorf("the cluster key: %w", err)
	}

	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})
	opURL := "https://" + m.Address + "/1.0/operations/" + op.ID
	return dialMigrationAs(ctx, opURL, client.HTTPSArgs{ClientCert: []byte(c.PEM), ClientKey: keyPEM, ServerCert: []byte(c.PEM)}, secrets)
}

// memberOnlyConnect connects a websocket of sess for a cluster member only: the secrets
// of an arrival are in its operation's metadata, which a restricted client of the
// instance's project may read, and whoever connects first plays the source.
func memberOnlyConnect(sess *ws.Session) func(*operations.Operation, *http.Request, http.ResponseWriter) error {
	return func(_ *operations.Operation, r *http.Request, w http.ResponseWriter) error {
		if !callerOf(r).Member {
			return api.StatusErrorf(http.StatusForbidden, "the websockets of an instance moved between cluster members are for cluster members only")
		}

		return sess.Connect(r, w)
	}
}

// POST /internal/cluster/move: receive an instance another member moves here. A
// websocket operation (control and fs, as a migration target in push mode) whose run
// receives the trees by the confined receiver and hands the row over to this member.
func internalClusterMove(d *Daemon, r *http.Request) response.Response {
	mover, ok := d.migrations.(memberMover)
	if !ok || !d.clustered() {
		return response.NotImplemented(api.StatusErrorf(http.StatusNotImplemented, "moving instances between cluster members is not supported by this server"))
	}

	req := moveIn{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	for _, k := range []string{req.Name, req.NewName} {
		err := project.ValidateKey(k)
		if err != nil {
			return response.BadRequest(api.StatusErrorf(http.StatusBadRequest, "invalid instance name: %v", err))
		}
	}

	if project.Of(req.Name) != project.Of(req.NewName) {
		return response.BadRequest(api.StatusErrorf(http.StatusBadRequest, "a move between cluster members keeps the instance's project"))
	}

	var row *db.Instance
	err = d.db.ReadTransaction(r.Context(), func(ctx context.Context, tx *db.Tx) error {
		var err error
		row, err = tx.GetInstance(ctx, req.Name)
		if err != nil {
			return err
		}

		if req.NewName != req.Name {
			ok, err := tx.InstanceExists(ctx, req.NewName)
			if err == nil && ok {
				err = api.StatusErrorf(http.StatusConflict, "instance %q already exists", project.Name(req.NewName))
			}

			return err
		}

		return nil
	})
	if err != nil {
		return response.SmartError(err)
	}

	if row.MemberID != req.From || req.From == d.selfMemberID() {
		return response.Conflict(api.StatusErrorf(http.StatusConflict, "instance %q is not on the cluster member moving it", project.Name(req.Name)))
	}

	in := instance.Incoming{
		Instance: db.Instance{Name: req.NewName, Architecture: row.Architecture, Description: row.Description, Ephemeral: row.Ephemeral,
			Config: row.Config, Devices: api.NonNil(row.Devices), Profiles: row.Profiles},
		Identity: instance.KeepIdentity,
		Source:   "cluster move",
		Move:     &instance.MemberMove{Name: req.Name, From: req.From},
	}

	sess, md := migrationSession()
	op, err := d.ops.Create(api.OperationClassWebsocket, "Receiving instance", instanceResources(req.NewName), md,
		func(ctx context.Context, op *operations.Operation) error {
			defer sess.Close("")
			err := waitMigration(ctx, sess)
			if err != nil {
				return err
			}

			return receiveMove(ctx, d, mover, in, sess.Conn("control"), sess.Conn("fs"))
		},
		memberOnlyConnect(sess), nil)
	if err != nil {
		return response.InternalError(err)
	}

	return response.OperationResponse(op)
}

// receiveMove receives the moved instance's trees and makes it this member's.
func receiveMove(ctx context.Context, d *Daemon, mover memberMover, in instance.Incoming, control, fs *ws.Conn) error {
	sink := &migration.Sink{Control: control, FS: fs}
	answer, err := sink.Accept(ctx)
	if err != nil {
		return err
	}

	err = func() error {
		ctx, cancel := watchSource(ctx, sink)
		defer cancel(nil)

		snaps, treeMaps, err := incomingSnapshots(sink, answer)
		if err != nil {
			return err
		}

		in.Snapshots = snaps
		rx := (&migrationSink{d: d, key: in.Instance.Name}).treeReceiver(sink, answer, treeMaps)
		in.FillAs = func(ctx context.Context, ids idmap.Set, tree, rootfsDir, metaDir string) error {
			if tree != "" {
				metaDir = "" // a snapshot's metadata is the instance's
			}

			return rx.receive(ctx, ids, tree, rootfsDir, metaDir)
		}

		return withCause(ctx, mover.CreateFromTrees(ctx, in))
	}()

	_ = sink.Finish(err)
	if err != nil && !errors.Is(err, context.Canceled) {
		d.log.Warn("receiving an instance from another cluster member", "instance", in.Instance.Name, "err", err)
	}

	return err
}
