package main

import (
	"context"

	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/shared/api"
)

// startCreated ends a create operation whose request asked for start (Incus's
// instance_create_start, for every source: an image here or elsewhere, a copy, a
// migration): it starts instance key, which the operation has just made (made) or
// brought up to date (a refresh). Before a made instance's start it marks the
// operation's metadata, so that a client whose launch fails at the start knows the
// instance of that name is its own (a create that failed may have lost the name to
// another client) and may delete it. A failed start fails the operation and leaves the
// instance stopped, as Incus does.
func (d *Daemon) startCreated(ctx context.Context, op *operations.Operation, start, made bool, key string) error {
	if !start {
		return nil
	}

	if made {
		err := op.UpdateMetadata(map[string]any{api.OperationInstanceCreated: true})
		if err != nil {
			return err
		}
	}

	return d.instances.Start(ctx, key)
}
