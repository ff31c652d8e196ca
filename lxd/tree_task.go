package main

import (
	"context"

	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/fstree"
)

// treeOp creates and starts a cancellable operation for work that walks an instance's tree
// (snapshot, copy, publish, backup): DELETE /1.0/operations/{id} cancels fn's context, and
// fn's tree copies and archives count into a Progress reported in the metadata under stage.
func (d *Daemon) treeOp(description, stage string, resources map[string][]string, fn func(ctx context.Context, op *operations.Operation) error) (*operations.Operation, error) {
	p := &fstree.Progress{}
	run := func(ctx context.Context, op *operations.Operation) error {
		operations.ReportProgress(op, stage, p)
		return fn(fstree.WithProgress(ctx, p), op)
	}

	// Cancelling the context is all it takes: the copy and archive loops check it.
	op, err := d.ops.Create(api.OperationClassTask, description, resources, nil, run, nil, func(*operations.Operation) error { return nil })
	if err != nil {
		return nil, err
	}

	err = op.Start()
	if err != nil {
		return nil, err
	}

	return op, nil
}

// treeTask is treeOp answered with the 202 response.
func (d *Daemon) treeTask(description, stage string, resources map[string][]string, fn func(ctx context.Context, op *operations.Operation) error) response.Response {
	op, err := d.treeOp(description, stage, resources, fn)
	if err != nil {
		return response.InternalError(err)
	}

	return response.OperationResponse(op)
}
