package main

import (
	"context"
	"net/http"

	"github.com/berth-dev/berth/lxd/instance"
	"github.com/berth-dev/berth/lxd/migration"
	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/ws"
)

// instanceMigrate is POST /1.0/instances/{name} with migration: the source of lxc
// copy/move to another server. Pull (no target): a websocket operation whose control and
// fs secrets the target dials. Push (target set): a task that dials the target's. A
// running instance is copied as of now (a frozen instant, without its memory) only when
// the client asked for no live migration (lxc --stateless); live migration is refused.
func instanceMigrate(d *Daemon, r *http.Request, name string, req api.InstancePost) response.Response {
	if d.migrations == nil {
		return response.NotImplemented(api.StatusErrorf(http.StatusNotImplemented, "migration is not supported"))
	}

	inst, err := d.instances.Get(r.Context(), name, false)
	if err != nil {
		return response.SmartError(err)
	}

	running := inst.StatusCode != api.Stopped
	if req.Live && running {
		return response.BadRequest(api.StatusErrorf(http.StatusBadRequest, "live migration is not supported: stop instance %q first, or copy it as of now with --stateless", inst.Name))
	}

	src := &migrationSource{d: d, name: name, snapshots: !req.InstanceOnly && !req.ContainerOnly, running: running}
	if req.Target != nil {
		t := *req.Target
		_, _, err := migrationOperation(t.Operation, t.Websockets)
		if err != nil {
			return response.SmartError(err)
		}

		return d.task("Migrating instance", instanceResources(name), func(ctx context.Context, op *operations.Operation) error {
			control, fs, err := dialMigration(ctx, t.Operation, t.Certificate, t.Websockets)
			if err != nil {
				return err
			}

			defer func() { _ = ws.Close(control, ""); _ = ws.Close(fs, "") }()
			return src.run(ctx, control, fs)
		})
	}

	sess, md := migrationSession()
	op, err := d.ops.Create(api.OperationClassWebsocket, "Migrating instance", instanceResources(name), md,
		func(ctx context.Context, op *operations.Operation) error {
			defer sess.Close("")
			err := waitMigration(ctx, sess)
			if err != nil {
				return err
			}

			return src.run(ctx, sess.Conn("control"), sess.Conn("fs"))
		},
		func(_ *operations.Operation, r *http.Request, w http.ResponseWriter) error { return sess.Connect(r, w) }, nil)
	if err != nil {
		return response.InternalError(err)
	}

	ownOperation(d, r, op)
	return response.OperationResponse(op)
}

// migrationSource sends one instance.
type migrationSource struct {
	d         *Daemon
	name      string
	snapshots bool
	running   bool
}

func (s *migrationSource) run(ctx context.Context, control, fs *ws.Conn) error {
	return s.d.migrations.ReadTrees(ctx, s.name, s.snapshots, func(ctx context.Context, t *instance.Trees) error {
		return s.send(ctx, t, control, fs)
	})
}

// send sends the instance whose trees t gives (a move between cluster members sends
// with this too).
func (s *migrationSource) send(ctx context.Context, t *instance.Trees, control, fs *ws.Conn) error {
	{
		src := migration.Source{Control: control, FS: fs, Snapshots: t.Snapshots, Running: s.running,
			SendTree: func(ctx context.Context, snap string, features []string) error {
				if snap == "" {
					rootfs, release, err := t.Root(ctx)
					if err != nil {
						return err
					}

					defer release()
					return migration.Send(ctx, s.d.migrationJails(), rootfs, t.MetaDir, t.IDs, fs, features)
				}

				view, release, err := t.Snapshot(snap)
				if err != nil {
					return err
				}

				defer release()
				return migration.Send(ctx, s.d.migrationJails(), view, "", t.IDs, fs, features)
			}}

		return src.Run(ctx)
	}
}
