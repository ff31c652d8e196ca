package main

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/lxd/imagestore"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
)

// Split images (LXD's "metadata tarball + rootfs squashfs", `lxc image import META
// ROOTFS`): the upload is multipart/form-data with a "metadata" part then a "rootfs"
// part, the export answers the same, and the fingerprint is the SHA-256 of the two files
// one after the other. Berth keeps both files as they came, so an export gives LXD back
// the same image with the same fingerprint. Pull (LXD protocol, simplestreams), relay and
// push (both ways) take them.

// spoolSplitUpload spools the parts of a multipart/form-data image upload.
func spoolSplitUpload(d *Daemon, r *http.Request) (*imagestore.Upload, error) {
	_, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || params["boundary"] == "" {
		return nil, api.StatusErrorf(http.StatusBadRequest, "invalid multipart/form-data content type: %v", err)
	}

	return spoolParts(d, multipart.NewReader(r.Body, params["boundary"]))
}

// spoolParts spools a split image's "metadata" and "rootfs" parts, and nothing else.
func spoolParts(d *Daemon, mr *multipart.Reader) (*imagestore.Upload, error) {
	part, err := mr.NextPart()
	if err != nil {
		return nil, api.StatusErrorf(http.StatusBadRequest, "reading the image's metadata part: %v", err)
	}

	if part.FormName() != "metadata" {
		return nil, api.StatusErrorf(http.StatusBadRequest, "invalid multipart image: the first part is %q, want \"metadata\"", part.FormName())
	}

	up, err := d.images.SpoolSplit(part, func() (io.Reader, error) {
		part, err := mr.NextPart()
		if err != nil {
			return nil, api.StatusErrorf(http.StatusBadRequest, "reading the image's rootfs part: %v", err)
		}

		switch part.FormName() {
		case "rootfs":
			return part, nil
		case "rootfs.img":
			return nil, api.StatusErrorf(http.StatusNotImplemented, "virtual-machine images are not supported: only container images")
		}

		return nil, api.StatusErrorf(http.StatusBadRequest, "invalid multipart image: the second part is %q, want \"rootfs\"", part.FormName())
	})
	if err != nil {
		return nil, err
	}

	_, err = mr.NextPart()
	if !errors.Is(err, io.EOF) {
		up.Remove()
		return nil, api.StatusErrorf(http.StatusBadRequest, "invalid multipart image: more than two parts")
	}

	return up, nil
}

// splitExportResponse answers GET /1.0/images/{fp}/export for a split image as LXD does:
// multipart/form-data, "metadata" then "rootfs", each with its file name.
type splitExportResponse struct {
	metaPath, metaName     string
	rootfsPath, rootfsName string
}

func (s *splitExportResponse) String() string { return "split image export" }

func (s *splitExportResponse) Render(w http.ResponseWriter, _ *http.Request) error {
	meta, err := os.Open(s.metaPath)
	if err != nil {
		return response.SmartError(fmt.Errorf("opening %q: %w", s.metaPath, err)).Render(w, nil)
	}

	defer meta.Close()

	rootfs, err := os.Open(s.rootfsPath)
	if err != nil {
		return response.SmartError(fmt.Errorf("opening %q: %w", s.rootfsPath, err)).Render(w, nil)
	}

	defer rootfs.Close()

	mw := multipart.NewWriter(w)
	w.Header().Set("Content-Type", mw.FormDataContentType())
	w.WriteHeader(http.StatusOK)

	for _, p := range []struct {
		field, name string
		f           *os.File
	}{{"metadata", s.metaName, meta}, {"rootfs", s.rootfsName, rootfs}} {
		pw, err := mw.CreateFormFile(p.field, p.name)
		if err != nil {
			return err
		}

		_, err = io.Copy(pw, p.f)
		if err != nil {
			return err
		}
	}

	return mw.Close()
}

// splitExport is the export of split image fp.
func splitExport(d *Daemon, img *api.Image) response.Response {
	fp := img.Fingerprint
	name := img.Filename
	if name == "" {
		name = fp + ".tar.xz"
	}

	return &splitExportResponse{
		metaPath: d.images.TarballPath(fp), metaName: name,
		rootfsPath: d.images.RootfsPath(fp), rootfsName: fp + ".squashfs",
	}
}

// pushSource is what a push uploads: a unified image's tarball (split nil) or a split
// image's multipart form (split; r and size are then the form's).
type pushSource struct {
	r     io.Reader
	size  int64
	split *client.SplitBody
	files []*os.File
}

func (p *pushSource) close() {
	for _, f := range p.files {
		_ = f.Close()
	}
}

// pushBody opens image fp's files for a push. The sizes are those of the open files, so a
// file replaced meanwhile cannot make the body disagree with its Content-Length.
func (d *Daemon) pushBody(fp string) (*pushSource, error) {
	p := &pushSource{}
	paths := []string{d.images.TarballPath(fp)}
	if d.images.IsSplit(fp) {
		paths = append(paths, d.images.RootfsPath(fp))
	}

	sizes := []int64{}
	for _, path := range paths {
		f, err := os.Open(path)
		if err != nil {
			p.close()
			return nil, err
		}

		p.files = append(p.files, f)
		fi, err := f.Stat()
		if err != nil {
			p.close()
			return nil, err
		}

		sizes = append(sizes, fi.Size())
	}

	if len(paths) == 1 {
		p.r, p.size = p.files[0], sizes[0]
		return p, nil
	}

	body, err := client.NewSplitBody(p.files[0], fp+".tar.xz", sizes[0], p.files[1], fp+".squashfs", sizes[1])
	if err != nil {
		p.close()
		return nil, err
	}

	p.r, p.size, p.split = body.Reader, body.Size, body
	return p, nil
}
