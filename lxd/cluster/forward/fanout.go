package forward

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/berth-dev/berth/shared/api"
)

// FanoutTimeout bounds each member's answer to a fanned-out request: a list through one
// member answers within it even when another member hangs.
const FanoutTimeout = 3 * time.Second

// maxFanoutBody caps one member's answer to a fanned-out request.
const maxFanoutBody = 64 << 20

// Answer is one member's answer to a fanned-out request: its metadata, or why there is
// none.
type Answer struct {
	Member   Member
	Metadata json.RawMessage
	Err      error
}

// Get sends GET path?query to every member of ms concurrently, as a relayed request
// (X-Berth-Forwarded: the member answers for itself only) on behalf of caller, each
// within timeout, and returns their answers in the order of ms. Offline members are
// not asked: their answer is an OfflineError.
func (f *Forwarder) Get(ctx context.Context, ms []Member, path string, query url.Values, caller string, timeout time.Duration) []Answer {
	out := make([]Answer, len(ms))
	var wg sync.WaitGroup
	for i, m := range ms {
		out[i].Member = m
		if !m.Online {
			out[i].Err = &OfflineError{Member: m}
			continue
		}

		wg.Add(1)
		go func() {
			defer wg.Done()
			out[i].Metadata, out[i].Err = f.get(ctx, m, path, query, caller, timeout)
		}()
	}

	wg.Wait()
	return out
}

// GetOne is Get of one member.
func (f *Forwarder) GetOne(ctx context.Context, m Member, path string, query url.Values, caller string, timeout time.Duration) (json.RawMessage, error) {
	a := f.Get(ctx, []Member{m}, path, query, caller, timeout)[0]
	return a.Metadata, a.Err
}

func (f *Forwarder) get(ctx context.Context, m Member, path string, query url.Values, caller string, timeout time.Duration) (json.RawMessage, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	u := url.URL{Scheme: "https", Host: m.Address, Path: path, RawQuery: query.Encode()}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, err
	}

	req.Header.Set(HeaderForwarded, f.origin)
	req.Header.Set(HeaderCaller, caller)
	resp, err := f.transport.RoundTrip(req)
	if err != nil {
		return nil, &UnreachableError{Member: m, Err: err}
	}

	// Read to the end (a trailing newline at most) so the connection is reused: a new
	// TLS handshake per list would cost more than the list.
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		_ = resp.Body.Close()
	}()

	var env api.Response
	err = json.NewDecoder(io.LimitReader(resp.Body, maxFanoutBody)).Decode(&env)
	if err != nil {
		return nil, &UnreachableError{Member: m, Err: fmt.Errorf("reading answer: %w", err)}
	}

	if env.Type == api.ErrorResponse || resp.StatusCode != http.StatusOK {
		code := env.ErrorCode
		if code == 0 {
			code = resp.StatusCode
		}

		return nil, api.StatusErrorf(code, "member %s: %s", m, env.Error)
	}

	return env.Metadata, nil
}
