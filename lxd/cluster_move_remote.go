package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/berth-dev/berth/lxd/cluster"
	"github.com/berth-dev/berth/shared/api"
)

// memberCall sends one API request to member m with the cluster certificate (a member's
// own call: every right) and returns its answer; an error answer is a StatusError with
// its code.
func (d *Daemon) memberCall(ctx context.Context, m cluster.Member, method, path string, query url.Values, body any) (*api.Response, error) {
	if d.forward == nil {
		return nil, api.StatusErrorf(http.StatusServiceUnavailable, "cannot reach cluster member %q: this server is not clustered", m.Name)
	}

	var rd io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}

		rd = bytes.NewReader(data)
	}

	u := url.URL{Scheme: "https", Host: m.Address, Path: path, RawQuery: query.Encode()}
	req, err := http.NewRequestWithContext(ctx, method, u.String(), rd)
	if err != nil {
		return nil, err
	}

	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}

	resp, err := d.forward.fwd.Client().Do(req)
	if err != nil {
		return nil, api.StatusErrorf(http.StatusServiceUnavailable, "cluster member %q is unreachable: %v", m.Name, err)
	}

	defer resp.Body.Close()
	var out api.Response
	err = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out)
	if err != nil {
		return nil, fmt.Errorf("reading cluster member %q's answer: %w", m.Name, err)
	}

	if out.Type == api.ErrorResponse || resp.StatusCode >= 400 {
		code := out.ErrorCode
		if code == 0 {
			code = resp.StatusCode
		}

		return nil, api.StatusErrorf(code, "cluster member %q: %s", m.Name, out.Error)
	}

	return &out, nil
}

// memberDo is memberCall that also waits for the operation an async answer names, and
// fails with its error.
func (d *Daemon) memberDo(ctx context.Context, m cluster.Member, method, path string, query url.Values, body any) error {
	ctx, cancel := context.WithTimeout(ctx, memberCallTimeout)
	defer cancel()

	out, err := d.memberCall(ctx, m, method, path, query, body)
	if err != nil || out.Type != api.AsyncResponse {
		return err
	}

	op, err := out.MetadataAsOperation()
	if err != nil {
		return fmt.Errorf("reading cluster member %q's answer: %w", m.Name, err)
	}

	for {
		res, err := d.memberCall(ctx, m, http.MethodGet, "/1.0/operations/"+url.PathEscape(op.ID)+"/wait", url.Values{"timeout": {"30"}}, nil)
		if err != nil {
			return err
		}

		var cur api.Operation
		err = json.Unmarshal(res.Metadata, &cur)
		if err != nil {
			return fmt.Errorf("reading cluster member %q's operation: %w", m.Name, err)
		}

		switch cur.StatusCode {
		case api.Success:
			return nil
		case api.Failure, api.Cancelled:
			return api.StatusErrorf(http.StatusInternalServerError, "cluster member %q: %s", m.Name, cur.Err)
		}
	}
}
