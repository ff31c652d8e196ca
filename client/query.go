package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/berth-dev/berth/shared/api"
)

// rawRequest sends one HTTP request to the daemon. path starts with /1.0 and
// may carry a query string. The caller closes the response body.
func (c *Client) rawRequest(ctx context.Context, method, path string, body io.Reader, header http.Header) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.baseURL+path, body)
	if err != nil {
		return nil, fmt.Errorf("building request %s %s: %w", method, path, err)
	}

	for k, v := range header {
		req.Header[k] = v
	}

	req.Header.Set("User-Agent", c.userAgent)

	resp, err := c.http.Do(req)
	if err != nil {
		return nil, unwrapURLError(err)
	}

	return resp, nil
}

// query sends a request with an optional JSON body and If-Match etag, and
// decodes the LXD envelope whatever the HTTP status. An error envelope
// becomes an api.StatusError carrying the error code and message.
func (c *Client) query(ctx context.Context, method, path string, body any, etag string) (*api.Response, string, error) {
	resp, data, err := c.send(ctx, method, path, body, etag)
	if err != nil {
		return nil, "", err
	}

	return decodeResponse(resp, data, path)
}

// send sends a request with an optional JSON body and If-Match etag and
// reads the whole answer, at most maxResponse bytes.
func (c *Client) send(ctx context.Context, method, path string, body any, etag string) (*http.Response, []byte, error) {
	header := http.Header{}

	var rdr io.Reader
	if body != nil {
		data, err := json.Marshal(body)
		if err != nil {
			return nil, nil, fmt.Errorf("encoding request body for %s %s: %w", method, path, err)
		}

		rdr = bytes.NewReader(data)
		header.Set("Content-Type", "application/json")
	}

	if etag != "" {
		header.Set("If-Match", etag)
	}

	resp, err := c.rawRequest(ctx, method, path, rdr, header)
	if err != nil {
		return nil, nil, err
	}

	defer func() { _ = resp.Body.Close() }()

	data, err := readResponse(resp, path)
	if err != nil {
		return nil, nil, err
	}

	return resp, data, nil
}

// readResponse reads resp's body, at most maxResponse bytes. A body of known length is
// read into one buffer of that size: growing a buffer to 1.6 MB (a list of 500
// instances) copies and clears 3 MB, a fifth of `berth list` in a fresh process.
func readResponse(resp *http.Response, path string) ([]byte, error) {
	if resp.ContentLength > 0 && resp.ContentLength <= maxResponse {
		data := make([]byte, resp.ContentLength)
		_, err := io.ReadFull(resp.Body, data)
		if err != nil {
			return nil, fmt.Errorf("reading response to %s: %w", path, err)
		}

		return data, nil
	}

	data, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return nil, fmt.Errorf("reading response to %s: %w", path, err)
	}

	if len(data) > maxResponse {
		return nil, fmt.Errorf("response to %s is larger than %d bytes", path, maxResponse)
	}

	return data, nil
}

// parseResponse decodes the envelope of resp. Bodies that are not JSON are an
// error unless the status is 200.
func parseResponse(resp *http.Response, path string) (*api.Response, string, error) {
	data, err := readResponse(resp, path)
	if err != nil {
		return nil, "", err
	}

	return decodeResponse(resp, data, path)
}

// decodeResponse decodes data, the body of resp, as an LXD envelope.
func decodeResponse(resp *http.Response, data []byte, path string) (*api.Response, string, error) {
	r := api.Response{}
	err := json.Unmarshal(data, &r)
	if err != nil {
		if resp.StatusCode != http.StatusOK {
			return nil, "", api.StatusErrorf(resp.StatusCode, "failed to fetch %s: %s", path, resp.Status)
		}

		return nil, "", fmt.Errorf("decoding response to %s: %w", path, err)
	}

	if r.Type == api.ErrorResponse {
		code := r.ErrorCode
		if code == 0 {
			code = resp.StatusCode
		}

		msg := strings.TrimSpace(r.Error)
		if msg == "" {
			msg = http.StatusText(code)
		}

		return nil, "", api.StatusErrorf(code, "%s", msg)
	}

	return &r, resp.Header.Get("ETag"), nil
}

// queryStruct runs query and decodes the sync metadata into target (may be nil).
//
// A sync answer is decoded in one pass, the envelope with the metadata into
// target: a list of 500 instances is over 1 MB of JSON, and decoding it twice
// (envelope, then metadata) was a third of `berth list`. Anything else (an
// error, an answer of another shape) is decoded again the careful way.
func (c *Client) queryStruct(ctx context.Context, method, path string, body any, etag string, target any) (string, error) {
	if target == nil {
		_, etag, err := c.query(ctx, method, path, body, etag)
		return etag, err
	}

	resp, data, err := c.send(ctx, method, path, body, etag)
	if err != nil {
		return "", err
	}

	return decodeInto(resp, data, method, path, target)
}

// queryList is queryStruct for a list (target points to a slice) of large elements,
// decoded one element at a time on every CPU where the answer allows (listsplit.go).
func (c *Client) queryList(ctx context.Context, method, path string, target any) (string, error) {
	resp, data, err := c.send(ctx, method, path, nil, "")
	if err != nil {
		return "", err
	}

	if resp.StatusCode == http.StatusOK && target != nil {
		elems, ok := syncListElems(data)
		if ok && decodeListInto(elems, target) == nil {
			return resp.Header.Get("ETag"), nil
		}
	}

	return decodeInto(resp, data, method, path, target)
}

// decodeInto decodes data, the answer to method path, into target.
func decodeInto(resp *http.Response, data []byte, method, path string, target any) (string, error) {
	env := struct {
		Type     api.ResponseType `json:"type"`
		Metadata any              `json:"metadata"`
	}{Metadata: target}

	if json.Unmarshal(data, &env) == nil && env.Type == api.SyncResponse {
		return resp.Header.Get("ETag"), nil
	}

	r, etag, err := decodeResponse(resp, data, path)
	if err != nil {
		return "", err
	}

	if len(r.Metadata) == 0 {
		return etag, nil
	}

	err = json.Unmarshal(r.Metadata, target)
	if err != nil {
		return "", fmt.Errorf("decoding %s %s metadata: %w", method, path, err)
	}

	return etag, nil
}

// queryOperation sends a request the server answers with an operation. Like
// the stock client it opens the events listener first, so no event of a fast
// operation can be missed; a failure to listen only means Wait falls back to
// polling.
func (c *Client) queryOperation(ctx context.Context, method, path string, body any, etag string) (*Operation, error) {
	listener, _ := c.getEvents(ctx, api.EventTypeOperation)

	resp, _, err := c.query(ctx, method, path, body, etag)
	if err != nil {
		listener.Disconnect()
		return nil, err
	}

	return c.newOperation(resp, method, path, listener)
}

// queryOperationBackground sends a request the server answers with an
// operation, and starts waiting for its end at once (waitInBackground).
func (c *Client) queryOperationBackground(ctx context.Context, method, path string, body any) (*Operation, error) {
	resp, _, err := c.query(ctx, method, path, body, "")
	if err != nil {
		return nil, err
	}

	op, err := c.newOperation(resp, method, path, nil)
	if err != nil {
		return nil, err
	}

	op.waitInBackground()

	return op, nil
}

// newOperation turns an async response into an Operation that owns listener.
func (c *Client) newOperation(resp *api.Response, method, path string, listener *EventListener) (*Operation, error) {
	if resp.Type != api.AsyncResponse {
		listener.Disconnect()
		return nil, fmt.Errorf("%s %s: expected an operation, got a %q response", method, path, resp.Type)
	}

	apiOp, err := resp.MetadataAsOperation()
	if err != nil {
		listener.Disconnect()
		return nil, fmt.Errorf("decoding operation returned by %s %s: %w", method, path, err)
	}

	return &Operation{Operation: *apiOp, c: c, listener: listener}, nil
}

// urlsToNames turns collection URLs such as /1.0/instances/c1 into names,
// rejecting any URL outside prefix (e.g. "/1.0/instances/").
func urlsToNames(prefix string, urls []string) ([]string, error) {
	names := make([]string, 0, len(urls))
	for _, u := range urls {
		u, _, _ = strings.Cut(u, "?")
		name, ok := strings.CutPrefix(u, prefix)
		if !ok || name == "" {
			return nil, fmt.Errorf("unexpected URL %q in collection %s", u, prefix)
		}

		names = append(names, pathUnescape(name))
	}

	return names, nil
}

// maxResponse bounds a JSON response envelope: a remote server is not trusted with the
// client's memory. recursion=2 of a thousand instances is a few MiB.
const maxResponse = 64 << 20
