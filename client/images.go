package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/shared/api"
)

func imagePath(fp string) string {
	return "/1.0/images/" + url.PathEscape(fp)
}

func aliasPath(name string) string {
	// Aliases such as "debian/12" contain slashes: they travel as %2F.
	return "/1.0/images/aliases/" + url.PathEscape(name)
}

// GetImages returns all images.
func (c *Client) GetImages(ctx context.Context) ([]api.Image, error) {
	images := []api.Image{}
	_, err := c.queryStruct(ctx, http.MethodGet, "/1.0/images?recursion=1", nil, "", &images)
	if err != nil {
		return nil, err
	}

	return images, nil
}

// GetImage returns the image with this fingerprint or unique fingerprint
// prefix, and its ETag.
func (c *Client) GetImage(ctx context.Context, fpOrPrefix string) (*api.Image, string, error) {
	img := api.Image{}
	etag, err := c.queryStruct(ctx, http.MethodGet, imagePath(fpOrPrefix), nil, "", &img)
	if err != nil {
		return nil, "", err
	}

	return &img, etag, nil
}

// DeleteImage deletes an image.
func (c *Client) DeleteImage(ctx context.Context, fp string) (*Operation, error) {
	return c.queryOperation(ctx, http.MethodDelete, imagePath(fp), nil, "")
}

// GetImageAliases returns all aliases.
func (c *Client) GetImageAliases(ctx context.Context) ([]api.ImageAliasesEntry, error) {
	aliases := []api.ImageAliasesEntry{}
	_, err := c.queryStruct(ctx, http.MethodGet, "/1.0/images/aliases?recursion=1", nil, "", &aliases)
	if err != nil {
		return nil, err
	}

	return aliases, nil
}

// GetImageAlias returns one alias and its ETag.
func (c *Client) GetImageAlias(ctx context.Context, name string) (*api.ImageAliasesEntry, string, error) {
	a := api.ImageAliasesEntry{}
	etag, err := c.queryStruct(ctx, http.MethodGet, aliasPath(name), nil, "", &a)
	if err != nil {
		return nil, "", err
	}

	return &a, etag, nil
}

// CreateImageAlias creates an alias; the target may be a fingerprint prefix.
func (c *Client) CreateImageAlias(ctx context.Context, req api.ImageAliasesPost) error {
	_, _, err := c.query(ctx, http.MethodPost, "/1.0/images/aliases", req, "")
	return err
}

// DeleteImageAlias deletes an alias (not the image).
func (c *Client) DeleteImageAlias(ctx context.Context, name string) error {
	_, _, err := c.query(ctx, http.MethodDelete, aliasPath(name), nil, "")
	return err
}

// CreateImage uploads a unified image tarball from r as a raw body
// (Content-Type application/octet-stream, X-LXD-filename). progress, if not
// nil, is called as bytes are sent; total is -1 when r's size is unknown.
// On success the operation metadata holds "fingerprint".
func (c *Client) CreateImage(ctx context.Context, r io.Reader, filename string, progress func(sent, total int64)) (*Operation, error) {
	total := readerSize(r)

	var body io.Reader = r
	if progress != nil {
		body = &progressReader{r: r, total: total, fn: progress}
	}

	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.baseURL+"/1.0/images", body)
	if err != nil {
		return nil, fmt.Errorf("building image upload request: %w", err)
	}

	if total >= 0 {
		req.ContentLength = total
	}

	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("X-LXD-filename", filepath.Base(filename))
	req.Header.Set("User-Agent", c.userAgent)

	listener, _ := c.getEvents(ctx, api.EventTypeOperation)

	resp, err := c.http.Do(req)
	if err != nil {
		listener.Disconnect()
		return nil, fmt.Errorf("uploading image: %w", unwrapURLError(err))
	}

	defer func() { _ = resp.Body.Close() }()

	r2, _, err := parseResponse(resp, "/1.0/images")
	if err != nil {
		listener.Disconnect()
		return nil, err
	}

	return c.newOperation(r2, http.MethodPost, "/1.0/images", listener)
}

// readerSize returns the number of bytes left in r, or -1 if unknown.
func readerSize(r io.Reader) int64 {
	switch v := r.(type) {
	case *os.File:
		fi, err := v.Stat()
		if err != nil || !fi.Mode().IsRegular() {
			return -1
		}

		pos, err := v.Seek(0, io.SeekCurrent)
		if err != nil {
			return -1
		}

		return fi.Size() - pos
	case interface{ Len() int }:
		return int64(v.Len())
	}

	return -1
}

// progressReader reports how many bytes have been read through it.
type progressReader struct {
	r     io.Reader
	sent  int64
	total int64
	fn    func(sent, total int64)
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.sent += int64(n)
		p.fn(p.sent, p.total)
	}

	return n, err
}
