package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"

	"github.com/berth-dev/berth/shared/api"
)

// PushImage uploads a unified image tarball to a server that issued a push token for
// it (LXD's push mode: X-LXD-secret and X-LXD-fingerprint), as a caller it need not
// trust. The answer is the server's operation, whose metadata holds the secret that
// lets the pusher wait for it (WaitOperationWithSecret).
func (c *Client) PushImage(ctx context.Context, r io.Reader, size int64, filename, fp, secret string) (*api.Operation, error) {
	return c.pushImage(ctx, r, size, "application/octet-stream", filename, fp, secret)
}

// PushSplitImage is PushImage for a split image: body is its multipart/form-data form
// (NewSplitBody), as LXD pushes split images.
func (c *Client) PushSplitImage(ctx context.Context, body *SplitBody, filename, fp, secret string) (*api.Operation, error) {
	return c.pushImage(ctx, body, body.Size, body.ContentType, filename, fp, secret)
}

func (c *Client) pushImage(ctx context.Context, r io.Reader, size int64, contentType, filename, fp, secret string) (*api.Operation, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.baseURL+"/1.0/images", r)
	if err != nil {
		return nil, fmt.Errorf("building image push request: %w", err)
	}

	req.ContentLength = size
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-LXD-filename", filepath.Base(filename))
	req.Header.Set("X-LXD-fingerprint", fp)
	req.Header.Set("X-LXD-secret", secret)
	req.Header.Set("User-Agent", c.userAgent)

	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("pushing image %s: %w", fp, unwrapURLError(err))
	}

	defer func() { _ = resp.Body.Close() }()

	env, _, err := parseResponse(resp, "/1.0/images")
	if err != nil {
		return nil, err
	}

	if env.Type != api.AsyncResponse {
		return nil, fmt.Errorf("pushing image %s: expected an operation, got a %q response", fp, env.Type)
	}

	return env.MetadataAsOperation()
}

// WaitOperationWithSecret waits until the operation id ends (GET
// /1.0/operations/{id}/wait?secret=), as an untrusted caller holding its secret may. It
// asks in rounds of 30 s: a longer silent answer would trip the transport's header timeout.
func (c *Client) WaitOperationWithSecret(ctx context.Context, id, secret string) (*api.Operation, error) {
	path := "/1.0/operations/" + url.PathEscape(id) + "/wait?timeout=30&secret=" + url.QueryEscape(secret)
	for {
		op := api.Operation{}
		_, err := c.queryStruct(ctx, http.MethodGet, path, nil, "", &op)
		if err != nil {
			return nil, err
		}

		if op.StatusCode.IsFinal() {
			return &op, nil
		}
	}
}
