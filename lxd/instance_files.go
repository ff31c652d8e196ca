package main

import (
	"fmt"
	"io"
	"net/http"
	"path"
	"strconv"
	"strings"

	"github.com/berth-dev/berth/lxd/fileio"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/lxd/session"
	"github.com/berth-dev/berth/shared/api"
)

// GET /1.0/instances/{name}/files?path=: a file as a raw body, a directory as a JSON list of
// names, a symlink as its (absolute) target; X-LXD-* headers describe the entry (§7.8).
func instanceFileGet(d *Daemon, r *http.Request) response.Response {
	p, err := fileio.Clean(r.URL.Query().Get("path"))
	if err != nil {
		return response.SmartError(err)
	}

	files, err := d.instances.OpenFiles(r.Context(), pathVar(r, "name"))
	if err != nil {
		return response.SmartError(err)
	}

	e, err := files.Open(p)
	if err != nil {
		files.Close()
		return response.SmartError(err)
	}

	headers := map[string]string{
		"X-LXD-uid":      strconv.FormatInt(e.UID, 10),
		"X-LXD-gid":      strconv.FormatInt(e.GID, 10),
		"X-LXD-mode":     fmt.Sprintf("%04o", e.Mode),
		"X-LXD-type":     e.Type,
		"X-LXD-modified": e.ModTime.UTC().Format(http.TimeFormat),
	}

	switch e.Type {
	case fileio.TypeFile:
		// The body closes the file and then the tree (unmounting a stopped instance).
		body := &closingReader{Reader: e.File, close: func() { _ = e.File.Close(); files.Close() }}
		return response.RawResponse(path.Base(p), e.Size, e.ModTime, headers, body)
	case fileio.TypeSymlink:
		files.Close()
		target := fileio.AbsTarget(p, e.Target)
		return response.RawResponse(path.Base(p), int64(len(target)), e.ModTime, headers, strings.NewReader(target))
	}

	files.Close()
	return withHeaders(headers, response.SyncResponse(true, e.Names))
}

// POST /1.0/instances/{name}/files?path=: create or write a file, directory or symlink.
func instanceFilePost(d *Daemon, r *http.Request) response.Response {
	p, err := fileio.Clean(r.URL.Query().Get("path"))
	if err != nil {
		return response.SmartError(err)
	}

	h, err := parseFileHeaders(r.Header)
	if err != nil {
		return response.SmartError(err)
	}

	files, err := d.instances.OpenFiles(r.Context(), pathVar(r, "name"))
	if err != nil {
		return response.SmartError(err)
	}

	defer files.Close()
	err = writeEntry(files, p, h, r.Body)
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponse(true, map[string]any{})
}

func writeEntry(files *session.Files, p string, h fileHeaders, body io.Reader) error {
	switch h.typ {
	case fileio.TypeDirectory:
		mode := h.mode
		if mode < 0 {
			mode = 0o750
		}

		return files.Mkdir(p, uint32(mode), h.uid, h.gid)
	case fileio.TypeSymlink:
		target, err := io.ReadAll(io.LimitReader(body, 4096))
		if err != nil {
			return err
		}

		return files.Symlink(string(target), p, h.uid, h.gid)
	}

	mode := h.mode
	if mode < 0 {
		mode = 0o644
	}

	return files.WriteFile(p, body, h.write == "append", uint32(mode), h.uid, h.gid)
}

// DELETE /1.0/instances/{name}/files?path=
func instanceFileDelete(d *Daemon, r *http.Request) response.Response {
	p, err := fileio.Clean(r.URL.Query().Get("path"))
	if err != nil {
		return response.SmartError(err)
	}

	files, err := d.instances.OpenFiles(r.Context(), pathVar(r, "name"))
	if err != nil {
		return response.SmartError(err)
	}

	defer files.Close()
	err = files.Remove(p)
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponse(true, map[string]any{})
}

type fileHeaders struct {
	typ      string
	write    string
	uid, gid int64
	mode     int64 // -1: not given
}

// parseFileHeaders reads X-LXD-type/write/uid/gid/mode as the 5.0 client sends them:
// absent or unparsable ids mean "not specified", the mode is a base-0 integer.
func parseFileHeaders(h http.Header) (fileHeaders, error) {
	out := fileHeaders{typ: h.Get("X-LXD-type"), write: h.Get("X-LXD-write"), uid: -1, gid: -1, mode: -1}
	switch out.typ {
	case "":
		out.typ = fileio.TypeFile
	case fileio.TypeFile, fileio.TypeDirectory, fileio.TypeSymlink:
	default:
		return out, api.StatusErrorf(http.StatusBadRequest, "unknown file type %q", out.typ)
	}

	switch out.write {
	case "":
		out.write = "overwrite"
	case "overwrite", "append":
	default:
		return out, api.StatusErrorf(http.StatusBadRequest, "unknown write mode %q", out.write)
	}

	if v, err := strconv.ParseInt(h.Get("X-LXD-uid"), 10, 64); err == nil {
		out.uid = v
	}

	if v, err := strconv.ParseInt(h.Get("X-LXD-gid"), 10, 64); err == nil {
		out.gid = v
	}

	if s := h.Get("X-LXD-mode"); s != "" {
		v, err := strconv.ParseInt(s, 0, 64)
		if err != nil || v < 0 {
			return out, api.StatusErrorf(http.StatusBadRequest, "invalid mode %q", s)
		}

		out.mode = v & 0o7777
	}

	return out, nil
}

// closingReader runs close once when the response is done with the body.
type closingReader struct {
	io.Reader
	close func()
}

// WriteTo sends the content in large chunks: the response writer would read 32 KiB at a
// time from the file server's socket.
func (c *closingReader) WriteTo(w io.Writer) (int64, error) {
	buf := make([]byte, 256<<10)
	return io.CopyBuffer(struct{ io.Writer }{w}, struct{ io.Reader }{c.Reader}, buf)
}

func (c *closingReader) Close() error {
	if c.close != nil {
		c.close()
		c.close = nil
	}

	return nil
}

// headerResponse adds headers to another response (a sync JSON one for directories).
type headerResponse struct {
	headers map[string]string
	response.Response
}

func withHeaders(headers map[string]string, resp response.Response) response.Response {
	return &headerResponse{headers: headers, Response: resp}
}

func (h *headerResponse) Render(w http.ResponseWriter, r *http.Request) error {
	for k, v := range h.headers {
		w.Header().Set(k, v)
	}

	return h.Response.Render(w, r)
}
