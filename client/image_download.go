package client

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"

	"github.com/berth-dev/berth/shared/api"
)

// withSecret is path with ?secret= when secret is set: an untrusted caller's grant to a
// private image (LXD's image secrets).
func withSecret(path, secret string) string {
	if secret == "" {
		return path
	}

	return path + "?secret=" + url.QueryEscape(secret)
}

// GetImageWithSecret returns the image with this full fingerprint, as an untrusted
// caller holding its secret sees it (secret may be empty for a public image).
func (c *Client) GetImageWithSecret(ctx context.Context, fp, secret string) (*api.Image, error) {
	img := api.Image{}
	_, err := c.queryStruct(ctx, http.MethodGet, withSecret(imagePath(fp), secret), nil, "", &img)
	if err != nil {
		return nil, err
	}

	return &img, nil
}

// ExportImage opens the download of an image's unified tarball (GET
// /1.0/images/{fp}/export). The caller reads and closes the body; its content is the
// server's word only: the caller checks it against the fingerprint. A split image
// (multipart answer) is an error.
//
// The body of a split image (metadata tarball plus rootfs) is a *SplitExport.
func (c *Client) ExportImage(ctx context.Context, fp, secret string) (io.ReadCloser, int64, error) {
	path := withSecret(imagePath(fp)+"/export", secret)
	resp, err := c.rawRequest(ctx, http.MethodGet, path, nil, nil)
	if err != nil {
		return nil, 0, fmt.Errorf("downloading image %s: %w", fp, err)
	}

	if resp.StatusCode != http.StatusOK {
		defer func() { _ = resp.Body.Close() }()
		_, _, err := parseResponse(resp, path)
		if err == nil {
			err = api.StatusErrorf(resp.StatusCode, "downloading image %s: %s", fp, resp.Status)
		}

		return nil, 0, err
	}

	mt, params, _ := mime.ParseMediaType(resp.Header.Get("Content-Type"))
	if mt == "multipart/form-data" {
		if params["boundary"] == "" {
			_ = resp.Body.Close()
			return nil, 0, fmt.Errorf("image %s: a multipart answer without a boundary", fp)
		}

		return &SplitExport{ReadCloser: resp.Body, Boundary: params["boundary"]}, resp.ContentLength, nil
	}

	return resp.Body, resp.ContentLength, nil
}

// SplitExport is the export of a split image: multipart/form-data with a "metadata"
// part then a "rootfs" part, separated by Boundary.
type SplitExport struct {
	io.ReadCloser
	Boundary string
}
