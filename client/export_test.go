package client

import (
	"context"
	"net/http"
	"net/url"

	"github.com/berth-dev/berth/shared/api"
)

// GetForTest runs a GET on an arbitrary path, to test envelope decoding.
func (c *Client) GetForTest(ctx context.Context, path string) (any, error) {
	var out any
	_, err := c.queryStruct(ctx, http.MethodGet, path, nil, "", &out)

	return out, err
}

// GetOperationForTest reads an operation as the server has it now.
func (c *Client) GetOperationForTest(ctx context.Context, id string) (api.Operation, error) {
	var op api.Operation
	_, err := c.queryStruct(ctx, http.MethodGet, "/1.0/operations/"+url.PathEscape(id), nil, "", &op)

	return op, err
}

// StartExecForTest posts an exec and connects none of its streams.
func (c *Client) StartExecForTest(ctx context.Context, name string, req api.InstanceExecPost) (*Operation, error) {
	return c.queryOperationBackground(ctx, http.MethodPost, instancePath(name)+"/exec", req)
}
