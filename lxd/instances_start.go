package main

import (
	"context"

	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/shared/api"
)

// thenStart wraps the run of a create operation whose request may ask for start (Incus's
// instance_create_start, for every source: an image here or elsewhere, a copy, a
// migration): once run has made instance key (made) or brought it up to date (a refresh),
// start starts it. Before a made instance's start it marks the operation's metadata, so
// that a client whose launch fails at the start knows the instance of that name is its
// own (a create that failed may have lost the name to another client) and may delete it.
// A failed start fails the operation and leaves the instance stopped, as Incus does.
func (d *Daemon) thenStart(start, made bool, key string, run operations.RunFunc) operations.RunFunc {
	if !start {
		return run
	}

	return func(ctx context.Context, op *operations.Operation) error {
		err := run(ctx, op)
		if err != nil {
			return err
		}

		if made {
			err = op.UpdateMetadata(map[string]any{api.OperationInstanceCreated: true})
			if err != nil {
				return err
			}
		}

		return d.instances.Start(ctx, key)
	}
}
