package forward

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// ErrImageNotFound is returned by FetchImage when no member has the image's file.
var ErrImageNotFound = errors.New("no member has the image file")

// FetchImage opens the export of image fp (GET /1.0/images/{fp}/export in project proj)
// from the first member of ms that has it, asking them in turn (self and offline ones
// skipped). The request is relayed (X-Berth-Forwarded), so a member without the file
// answers 404 instead of fetching it in turn. The caller reads the body and must check
// it against fp: nothing here trusts the content.
func (f *Forwarder) FetchImage(ctx context.Context, ms []Member, proj, fp string) (body io.ReadCloser, contentType string, from Member, err error) {
	var errs []error
	for _, m := range ms {
		if m.Name == f.origin || !m.Online || m.Address == "" {
			continue
		}

		q := url.Values{}
		if proj != "" {
			q.Set("project", proj)
		}

		u := url.URL{Scheme: "https", Host: m.Address, Path: "/1.0/images/" + url.PathEscape(fp) + "/export", RawQuery: q.Encode()}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return nil, "", Member{}, err
		}

		req.Header.Set(HeaderForwarded, f.origin)
		req.Header.Set(HeaderCaller, CallerAdmin)
		resp, err := f.transport.RoundTrip(req)
		if err != nil {
			errs = append(errs, &UnreachableError{Member: m, Err: err})
			continue
		}

		if resp.StatusCode != http.StatusOK {
			msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
			_ = resp.Body.Close()
			if resp.StatusCode != http.StatusNotFound {
				errs = append(errs, fmt.Errorf("member %s: HTTP %d: %s", m, resp.StatusCode, strings.TrimSpace(string(msg))))
			}

			continue
		}

		return resp.Body, resp.Header.Get("Content-Type"), m, nil
	}

	if len(errs) > 0 {
		return nil, "", Member{}, fmt.Errorf("fetching image %s: %w", fp, errors.Join(append([]error{ErrImageNotFound}, errs...)...))
	}

	return nil, "", Member{}, fmt.Errorf("fetching image %s: %w", fp, ErrImageNotFound)
}
