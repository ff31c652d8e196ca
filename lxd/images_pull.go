package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"regexp"
	"strconv"
	"sync"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/lxd/imagestore"
	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
)

// The daemon downloads images from another server speaking LXD's protocol (issue 15):
// the alias is resolved there, the image's record read (with its secret if private),
// its unified tarball downloaded and hashed into the store's spool, and imported only if
// the hash is the fingerprint. The server is untrusted: its certificate is pinned, it may
// not redirect (the client refuses), the download is size- and time-bounded, and the
// tarball goes through the same checks as an upload.

const (
	// pullMaxSize caps a downloaded image; a server announcing or sending more is refused.
	pullMaxSize = 16 << 30
	// pullTimeout bounds a whole download, however slowly the server trickles it.
	pullTimeout = time.Hour
	// pullLookupTimeout bounds the alias and record lookups.
	pullLookupTimeout = time.Minute
	// pullStallTimeout ends a download that sent nothing for this long.
	pullStallTimeout = 2 * time.Minute
)

// fingerprintRE is a full image fingerprint: what a remote's alias or record must give.
var fingerprintRE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// pullSource is where an image is downloaded from: the fields LXD's image and instance
// sources share for mode "pull".
type pullSource struct {
	Server, Protocol, Certificate string
	Alias, Fingerprint, Secret    string
}

// check refuses what Berth cannot download, with the request's status.
func (s pullSource) check() error {
	switch s.Protocol {
	case "", "lxd":
	case "simplestreams":
		return s.checkStreams()
	default:
		return api.StatusErrorf(http.StatusBadRequest, "unknown image server protocol %q", s.Protocol)
	}

	if s.Server == "" {
		return api.StatusErrorf(http.StatusBadRequest, "image source server is missing")
	}

	_, err := client.NormalizeURL(s.Server)
	if err != nil {
		return api.StatusErrorf(http.StatusBadRequest, "%v", err)
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

// pullImage downloads the image src names unless the store has it already, and returns
// its fingerprint. Progress goes into op's metadata (download_progress, as LXD's).
func (d *Daemon) pullImage(ctx context.Context, op *operations.Operation, src pullSource, opts imagestore.ImportOptions) (string, error) {
	err := src.check()
	if err != nil {
		return "", err
	}

	if src.Protocol == "simplestreams" {
		return d.pullStreams(ctx, op, src, opts)
	}

	// The pinned certificate, or the system roots when none is given (LXD's behaviour
	// for a public server). No client certificate: the remote sees an untrusted caller,
	// which the image's public flag or its secret admits.
	c, err := client.ConnectHTTPS(src.Server, client.HTTPSArgs{ServerCert: []byte(src.Certificate)})
	if err != nil {
		return "", fmt.Errorf("connecting to image server %s: %w", src.Server, err)
	}

	img, err := remoteImage(ctx, c, src)
	if err != nil {
		return "", err
	}

	return d.fetchImage(ctx, op, download{
		fp: img.Fingerprint, server: src.Server, size: img.Size, filename: img.Filename, properties: img.Properties,
		open: func(ctx context.Context) (io.ReadCloser, int64, error) {
			return c.ExportImage(ctx, img.Fingerprint, src.Secret)
		},
	}, opts)
}

// download is one image file a pull found on a server.
type download struct {
	fp, server string
	size       int64 // as announced
	filename   string
	properties map[string]string
	// open starts the transfer: the body and its length (-1 when unknown).
	open func(ctx context.Context) (io.ReadCloser, int64, error)
}

// fetchImage brings dl into the store unless it is there already: within the size and
// time caps, cut off when the server stops sending, with progress in op, and imported
// only if its sha256 is dl.fp. A failed download leaves nothing in the store.
func (d *Daemon) fetchImage(ctx context.Context, op *operations.Operation, dl download, opts imagestore.ImportOptions) (string, error) {
	fp := dl.fp
	_, err := d.images.Get(ctx, opts.Project, fp)
	if err == nil {
		return fp, nil // cached: already in the store
	}

	if dl.size > pullMaxSize {
		return "", fmt.Errorf("image %s is %d bytes, more than the %d a download may be", fp, dl.size, int64(pullMaxSize))
	}

	dctx, cancel := context.WithTimeout(ctx, pullTimeout)
	defer cancel()

	body, length, err := dl.open(dctx)
	if err != nil {
		return "", fmt.Errorf("image server %s: %w", dl.server, err)
	}

	defer func() { _ = body.Close() }()

	if length > pullMaxSize {
		return "", fmt.Errorf("image %s from %s is %d bytes, more than the %d a download may be", fp, dl.server, length, int64(pullMaxSize))
	}

	// A server that stops sending ends the download (cancelling its context closes the
	// connection) instead of holding the operation for the whole timeout.
	stall := time.AfterFunc(pullStallTimeout, cancel)
	defer stall.Stop()

	pr := &pullProgress{r: io.LimitReader(body, pullMaxSize+1), total: dl.size, op: op, start: time.Now(), stall: stall}
	var up *imagestore.Upload
	if split, ok := body.(*client.SplitExport); ok {
		up, err = spoolParts(d, multipart.NewReader(pr, split.Boundary)) // images_split.go
	} else {
		up, err = d.images.Spool(pr)
	}

	if err != nil {
		if !stall.Stop() && ctx.Err() == nil {
			err = fmt.Errorf("the server sent nothing for %s", pullStallTimeout)
		}

		return "", fmt.Errorf("downloading image %s from %s: %w", fp, dl.server, err)
	}

	if up.Size > pullMaxSize {
		up.Remove()
		return "", fmt.Errorf("image %s from %s is larger than %d bytes", fp, dl.server, int64(pullMaxSize))
	}

	if up.Fingerprint != fp {
		up.Remove()
		return "", fmt.Errorf("image downloaded from %s does not match its fingerprint: its sha256 is %s, want %s", dl.server, up.Fingerprint, fp)
	}

	if opts.Filename == "" {
		opts.Filename = dl.filename
	}

	if opts.Properties == nil {
		opts.Properties = dl.properties
	}

	fp, _, err = d.images.Import(ctx, up, opts)
	if errors.Is(err, imagestore.ErrExists) {
		return fp, nil // a concurrent pull of the same image won
	}

	if err != nil {
		return "", err
	}

	d.events.SendLifecycle(opts.Project, "image-created", imageURL(opts.Project, fp), nil)
	return fp, nil
}

// remoteImage resolves src's alias or fingerprint on the server and returns the image's
// record, whose fingerprint must be a full one.
func remoteImage(ctx context.Context, c *client.Client, src pullSource) (*api.Image, error) {
	ctx, cancel := context.WithTimeout(ctx, pullLookupTimeout)
	defer cancel()

	fp := src.Fingerprint
	if fp == "" {
		a, _, err := c.GetImageAlias(ctx, src.Alias)
		if err != nil {
			return nil, fmt.Errorf("image alias %q on %s: %w", src.Alias, src.Server, err)
		}

		fp = a.Target
	}

	img, err := c.GetImageWithSecret(ctx, fp, src.Secret)
	if err != nil {
		return nil, fmt.Errorf("image %q on %s: %w", fp, src.Server, err)
	}

	if !fingerprintRE.MatchString(img.Fingerprint) {
		return nil, fmt.Errorf("image server %s gave an invalid fingerprint %q", src.Server, img.Fingerprint)
	}

	if src.Fingerprint != "" && len(src.Fingerprint) == 64 && img.Fingerprint != src.Fingerprint {
		return nil, fmt.Errorf("image server %s answered for image %s with image %s", src.Server, src.Fingerprint, img.Fingerprint)
	}

	if img.Type != "" && img.Type != api.InstanceTypeContainer {
		return nil, api.StatusErrorf(http.StatusNotImplemented, "image %s is of type %q: only container images are supported", img.Fingerprint, img.Type)
	}

	return img, nil
}

// pullProgress counts a download into the operation's metadata, at most once a second.
type pullProgress struct {
	r     io.Reader
	total int64
	op    *operations.Operation
	start time.Time
	stall *time.Timer // reset by each read that brings data
	key   string      // the metadata key: download_progress when empty

	mu   sync.Mutex
	done int64
	last time.Time
}

func (p *pullProgress) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 && p.stall != nil {
		p.stall.Reset(pullStallTimeout)
	}

	p.mu.Lock()
	p.done += int64(n)
	now := time.Now()
	report := p.op != nil && (now.Sub(p.last) >= time.Second || err == io.EOF)
	if report {
		p.last = now
	}

	done := p.done
	p.mu.Unlock()

	if report {
		rate := float64(done) / now.Sub(p.start).Seconds()
		msg := "rootfs: " + strconv.FormatInt(done, 10) + " bytes"
		if p.total > 0 {
			msg = fmt.Sprintf("rootfs: %d%% (%s/s)", done*100/p.total, humanBytes(rate))
		}

		key := p.key
		if key == "" {
			key = "download_progress"
		}

		_ = p.op.UpdateMetadata(map[string]any{key: msg})
	}

	return n, err
}

// humanBytes is a rate as lxc shows one (1000-based units).
func humanBytes(v float64) string {
	units := []string{"B", "kB", "MB", "GB", "TB"}
	i := 0
	for v >= 1000 && i < len(units)-1 {
		v /= 1000
		i++
	}

	return fmt.Sprintf("%.2f%s", v, units[i])
}

// imagesPostPull answers POST /1.0/images with source type "image" (lxc image copy in
// pull mode): an operation downloads the image, then adds the request's aliases.
func imagesPostPull(d *Daemon, proj string, req api.ImagesPost) response.Response {
	s := req.Source
	if s.Mode != "" && s.Mode != "pull" {
		return response.NotImplemented(fmt.Errorf("image source mode %q is not supported", s.Mode))
	}

	src := pullSource{Server: s.Server, Protocol: s.Protocol, Certificate: s.Certificate, Alias: s.Alias, Fingerprint: s.Fingerprint, Secret: s.Secret}
	err := src.check()
	if err != nil {
		return response.SmartError(err)
	}

	opts := imagestore.ImportOptions{Project: proj, Filename: req.Filename, Public: req.Public}
	if len(req.Properties) > 0 {
		opts.Properties = req.Properties
	}

	return d.task("Downloading image", map[string][]string{}, func(ctx context.Context, op *operations.Operation) error {
		fp, err := d.pullImage(ctx, op, src, opts)
		if err != nil {
			return err
		}

		_ = op.UpdateMetadata(map[string]any{"fingerprint": fp})
		// An explicit copy keeps the image, even one a launch had cached.
		err = d.images.SetCached(ctx, proj, fp, false)
		if err != nil {
			return err
		}

		return d.images.AddAliases(ctx, proj, fp, api.InstanceTypeContainer, req.Aliases...)
	})
}
