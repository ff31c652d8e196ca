package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"runtime"
	"strings"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/lxd/imagestore"
	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/streams"
)

// The daemon downloads images from a simplestreams server (issue 15): index.json names
// the products file, whose product (by alias) or item (by sha256, the fingerprint of a
// unified image) gives the tarball's path, size and hash; a split image (lxd.tar.xz +
// squashfs, fingerprint combined_squashfs_sha256) is downloaded as its two files (a
// root.tar.xz rootfs is not taken). The server is untrusted as for the LXD protocol: pinned
// certificate or system roots, no redirects, documents and download size-capped and
// time-bounded, the tarball's hash checked before the store's import.

// hexRE is a fingerprint or a prefix of one.
var hexRE = regexp.MustCompile(`^[0-9a-f]{1,64}$`)

// streamsBase checks a simplestreams server URL (https, a host, an optional path; no
// user, query or fragment) and returns it with a trailing slash.
func streamsBase(server string) (string, error) {
	u, err := url.Parse(server)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" {
		return "", api.StatusErrorf(http.StatusBadRequest, "invalid simplestreams server %q: want https://HOST[:PORT][/PATH]", server)
	}

	return strings.TrimSuffix(u.String(), "/") + "/", nil
}

// streamsArchs are the names a product of this machine's architecture may carry.
func streamsArchs() []string {
	switch runtime.GOARCH {
	case "amd64":
		return []string{"x86_64", "amd64"}
	case "arm64":
		return []string{"aarch64", "arm64"}
	}

	return []string{archName()}
}

// streamsGet fetches base+path, at most max bytes, or opens it for a download when max
// is 0 (the caller closes the body).
func streamsGet(ctx context.Context, hc *http.Client, base, path string, max int64) ([]byte, *http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+path, nil)
	if err != nil {
		return nil, nil, err
	}

	req.Header.Set("User-Agent", "berth/"+client.Version)
	resp, err := hc.Do(req)
	if err != nil {
		return nil, nil, err
	}

	if resp.StatusCode != http.StatusOK {
		_ = resp.Body.Close()
		return nil, nil, fmt.Errorf("GET %s: %s", path, resp.Status)
	}

	if max == 0 {
		return nil, resp, nil
	}

	defer func() { _ = resp.Body.Close() }()
	if resp.ContentLength > max {
		return nil, nil, fmt.Errorf("%s is %d bytes, more than the %d allowed", path, resp.ContentLength, max)
	}

	data, err := io.ReadAll(io.LimitReader(resp.Body, max+1))
	if err != nil {
		return nil, nil, fmt.Errorf("reading %s: %w", path, err)
	}

	if int64(len(data)) > max {
		return nil, nil, fmt.Errorf("%s is more than the %d bytes allowed", path, max)
	}

	return data, nil, nil
}

// streamsFind resolves src on the server and returns the tarball's item.
func streamsFind(ctx context.Context, hc *http.Client, base string, src pullSource) (*streams.Found, error) {
	ctx, cancel := context.WithTimeout(ctx, pullLookupTimeout)
	defer cancel()

	data, _, err := streamsGet(ctx, hc, base, streams.IndexPath, streams.MaxIndexSize)
	if err != nil {
		return nil, fmt.Errorf("image server %s: %w", src.Server, err)
	}

	path, err := streams.ParseIndex(data)
	if err != nil {
		return nil, fmt.Errorf("image server %s: %w", src.Server, err)
	}

	data, _, err = streamsGet(ctx, hc, base, path, streams.MaxProductsSize)
	if err != nil {
		return nil, fmt.Errorf("image server %s: %w", src.Server, err)
	}

	prods, err := streams.ParseProducts(data)
	if err != nil {
		return nil, fmt.Errorf("image server %s: %w", src.Server, err)
	}

	// As LXD's daemon: the fingerprint field may hold an alias (lxc sends the alias there
	// for a public image, so that the copy can follow it), so it is tried as one first.
	name := src.Fingerprint
	if name == "" {
		name = src.Alias
	}

	found, err := prods.Find(name, "", streamsArchs()...)
	if errors.Is(err, streams.ErrNotFound) && src.Fingerprint != "" && hexRE.MatchString(src.Fingerprint) {
		found, err = prods.Find("", src.Fingerprint)
	}

	if errors.Is(err, streams.ErrNotFound) {
		return nil, api.StatusErrorf(http.StatusNotFound, "image %q not found on %s (or not a unified container image)", name, src.Server)
	}

	if err != nil {
		return nil, fmt.Errorf("image server %s: %w", src.Server, err)
	}

	return found, nil
}

// pullStreams is pullImage for a simplestreams server.
func (d *Daemon) pullStreams(ctx context.Context, op *operations.Operation, src pullSource, opts imagestore.ImportOptions) (string, error) {
	base, err := streamsBase(src.Server)
	if err != nil {
		return "", err
	}

	hc, err := client.NewHTTPSClient(client.HTTPSArgs{ServerCert: []byte(src.Certificate)})
	if err != nil {
		return "", fmt.Errorf("connecting to image server %s: %w", src.Server, err)
	}

	found, err := streamsFind(ctx, hc, base, src)
	if err != nil {
		return "", err
	}

	return d.fetchImage(ctx, op, download{
		fp: found.Fingerprint, server: src.Server, size: found.Size(), properties: found.Properties,
		open: func(ctx context.Context) (io.ReadCloser, int64, error) {
			if found.Rootfs != nil {
				return streamsSplit(ctx, hc, base, found.Item.Path, found.Rootfs.Path), -1, nil
			}

			_, resp, err := streamsGet(ctx, hc, base, found.Item.Path, 0)
			if err != nil {
				return nil, 0, err
			}

			return resp.Body, resp.ContentLength, nil
		},
	}, opts)
}

// streamsSplit downloads a split image's two files one after the other and hands them
// on as the multipart body of a split export, so fetchImage spools, caps and checks
// them as it does an LXD server's split image.
func streamsSplit(ctx context.Context, hc *http.Client, base, metaPath, rootfsPath string) io.ReadCloser {
	pr, pw := io.Pipe()
	mw := multipart.NewWriter(pw)

	go func() {
		for _, p := range []struct{ field, path string }{{"metadata", metaPath}, {"rootfs", rootfsPath}} {
			_, resp, err := streamsGet(ctx, hc, base, p.path, 0)
			if err != nil {
				_ = pw.CloseWithError(err)
				return
			}

			part, err := mw.CreateFormFile(p.field, path.Base(p.path))
			if err == nil {
				_, err = io.Copy(part, resp.Body)
			}

			_ = resp.Body.Close()
			if err != nil {
				_ = pw.CloseWithError(err)
				return
			}
		}

		_ = pw.CloseWithError(mw.Close())
	}()

	return &client.SplitExport{ReadCloser: pr, Boundary: mw.Boundary()}
}

// checkStreams is check for a simplestreams source, whose server may have a path.
func (s pullSource) checkStreams() error {
	_, err := streamsBase(s.Server)
	if err != nil {
		return err
	}

	if s.Alias == "" && s.Fingerprint == "" {
		return api.StatusErrorf(http.StatusBadRequest, "image source needs an alias or a fingerprint")
	}

	if s.Certificate != "" {
		_, err = client.ParseCertificate([]byte(s.Certificate))
		if err != nil {
			return api.StatusErrorf(http.StatusBadRequest, "invalid image server certificate: %v", err)
		}
	}

	return nil
}
