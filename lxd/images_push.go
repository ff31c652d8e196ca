package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/lxd/imagestore"
	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/ws"
)

// Push mode of `lxc image copy` (issue 15), LXD's protocol:
//  1. the client asks the target for a push token: POST /1.0/images with source mode
//     "push" and the image's fingerprint; the answer is a token operation whose
//     metadata holds a secret;
//  2. it asks the source to push: POST /1.0/images/{fp}/export with the target's URL,
//     certificate and that secret;
//  3. the source uploads the tarball to the target as an untrusted caller, with the
//     secret and fingerprint in X-LXD-secret and X-LXD-fingerprint, and waits for the
//     target's import operation with that operation's own secret
//     (GET /1.0/operations/{id}/wait?secret=).
//
// A token admits one upload of exactly the image it names: it is used up when the
// upload starts, the body must hash to its fingerprint, and it ends after
// imagePushTokenLifetime unused. The untrusted uploader gets the trusted uploader's body
// limits only once its token matched.
const (
	imagePushTokenDesc     = "Image push token"
	imagePushReceiveDesc   = "Receiving pushed image"
	imagePushTokenLifetime = time.Hour
	maxImagePushTokens     = 64
)

// pushGrant is what the token's issuer asked for the pushed image.
type pushGrant struct {
	proj       string // the issuer's project: the image joins its image set
	fp         string
	aliases    []api.ImageAlias
	properties map[string]string
	public     bool
}

// imagePushGrants maps a live push token's operation id to its grant.
var imagePushGrants sync.Map

// imagePushMu makes finding a push token and using it up one step.
var imagePushMu sync.Mutex

// imagesPostPushToken answers POST /1.0/images with source mode "push" (the target side
// of step 1).
func imagesPostPushToken(d *Daemon, proj string, req api.ImagesPost) response.Response {
	fp := req.Source.Fingerprint
	if !fingerprintRE.MatchString(fp) {
		return response.BadRequest(fmt.Errorf("an image push needs the image's full fingerprint, not %q", fp))
	}

	live := 0
	for _, op := range d.ops.List() {
		if op.Status() == api.Running && op.Render().Description == imagePushTokenDesc {
			live++
		}
	}

	if live >= maxImagePushTokens {
		return response.SmartError(api.StatusErrorf(http.StatusServiceUnavailable, "%d image push tokens are waiting already: cancel some first", live))
	}

	md := map[string]any{"secret": ws.NewSecret(), "fingerprint": fp, "aliases": req.Aliases, "properties": req.Properties, "public": req.Public}
	resources := map[string][]string{"images": {imageURL(proj, fp)}}
	op, err := d.ops.Create(api.OperationClassToken, imagePushTokenDesc, resources, md, nil, nil,
		func(*operations.Operation) error { return nil })
	if err != nil {
		return response.InternalError(err)
	}

	imagePushGrants.Store(op.ID(), pushGrant{proj: proj, fp: fp, aliases: req.Aliases, properties: req.Properties, public: req.Public})
	err = op.Start()
	if err != nil {
		imagePushGrants.Delete(op.ID())
		return response.InternalError(err)
	}

	timer := time.AfterFunc(imagePushTokenLifetime, func() { _ = op.Cancel() })
	go func() {
		<-op.Done()
		timer.Stop()
		imagePushGrants.Delete(op.ID())
	}()

	return response.OperationResponse(op)
}

// takePushGrant returns the grant of the live push token for image fp whose secret is
// secret, and ends that token; nil when none matches.
func (d *Daemon) takePushGrant(fp, secret string) *pushGrant {
	if secret == "" || len(secret) > 128 || !fingerprintRE.MatchString(fp) {
		return nil
	}

	imagePushMu.Lock()
	defer imagePushMu.Unlock()

	// Every live token is compared, in constant time, whatever matched before.
	var found *operations.Operation
	for _, op := range d.ops.List() {
		if op.Status() != api.Running || op.Class() != api.OperationClassToken || op.Render().Description != imagePushTokenDesc {
			continue
		}

		want, _ := op.Metadata()["secret"].(string)
		wantFP, _ := op.Metadata()["fingerprint"].(string)
		if ws.SecretMatches(secret, want) && wantFP == fp {
			found = op
		}
	}

	if found == nil {
		return nil
	}

	v, ok := imagePushGrants.Load(found.ID())
	if !ok || found.Cancel() != nil {
		return nil // it ended meanwhile
	}

	g := v.(pushGrant)
	return &g
}

// imagesPostPushed receives a pushed image (the target side of step 3): the caller is
// anyone holding a push token; the body is the image's unified tarball, or a split
// image's two parts.
func imagesPostPushed(d *Daemon, r *http.Request) response.Response {
	fp := r.Header.Get("X-LXD-fingerprint")
	grant := d.takePushGrant(fp, r.Header.Get("X-LXD-secret"))
	if grant == nil {
		leaveBody(r)
		return response.Forbidden(fmt.Errorf("not authorized: no image push token matches this secret and fingerprint"))
	}

	ct := r.Header.Get("Content-Type")
	split := strings.HasPrefix(ct, "multipart/form-data") // images_split.go
	if ct != "" && ct != "application/octet-stream" && !split {
		return response.BadRequest(fmt.Errorf("pushed images must be unified tarballs (application/octet-stream) or split images (multipart/form-data), not %q", ct))
	}

	// The token admits an image upload: the body may be as large as a download.
	widenBody(r, pullMaxSize+1, trustedBodyIdle)
	spool := func() (*imagestore.Upload, error) { return d.images.Spool(r.Body) }
	if split {
		spool = func() (*imagestore.Upload, error) { return spoolSplitUpload(d, r) }
	}

	up, err := spool()
	if err != nil {
		return response.SmartError(err)
	}

	if up.Size > pullMaxSize {
		up.Remove()
		return response.SmartError(api.StatusErrorf(http.StatusRequestEntityTooLarge, "pushed image is larger than %d bytes", int64(pullMaxSize)))
	}

	if up.Fingerprint != grant.fp {
		up.Remove()
		return response.BadRequest(fmt.Errorf("pushed image does not match its token: its sha256 is %s, want %s", up.Fingerprint, grant.fp))
	}

	opts := imagestore.ImportOptions{Project: grant.proj, Filename: r.Header.Get("X-LXD-filename"), Public: grant.public, Properties: grant.properties}
	secret := ws.NewSecret()
	op, err := d.ops.Create(api.OperationClassTask, imagePushReceiveDesc, map[string][]string{"images": {imageURL(grant.proj, grant.fp)}},
		map[string]any{"secret": secret}, func(ctx context.Context, op *operations.Operation) error {
			fp, err := d.importImage(ctx, op, up, opts)
			if err != nil {
				return err
			}

			d.events.SendLifecycle(grant.proj, "image-created", imageURL(grant.proj, fp), nil)
			return d.images.AddAliases(ctx, grant.proj, fp, api.InstanceTypeContainer, grant.aliases...)
		}, nil, nil)
	if err == nil {
		err = op.Start()
	}

	if err != nil {
		up.Remove()
		return response.InternalError(err)
	}

	return response.OperationResponse(op)
}

// mayWaitWithSecret reports whether an untrusted caller may wait for op: only for an
// image it pushed, with that operation's secret.
func mayWaitWithSecret(op *operations.Operation, secret string) bool {
	if op.Render().Description != imagePushReceiveDesc || secret == "" || len(secret) > 128 {
		return false
	}

	want, _ := op.Metadata()["secret"].(string)
	return ws.SecretMatches(secret, want)
}

// imageExportPost answers POST /1.0/images/{fingerprint}/export (the source side of
// step 2): an operation uploads the image to the target with the target's token.
func imageExportPost(d *Daemon, r *http.Request) response.Response {
	img, err := d.images.Get(r.Context(), projectOf(r), pathVar(r, "fingerprint"))
	if err != nil {
		return response.SmartError(err)
	}

	req := api.ImageExportPost{}
	err = decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	_, err = client.NormalizeURL(req.Target)
	if err != nil {
		return response.BadRequest(fmt.Errorf("invalid push target: %w", err))
	}

	if req.Certificate != "" {
		_, err = client.ParseCertificate([]byte(req.Certificate))
		if err != nil {
			return response.BadRequest(fmt.Errorf("invalid push target certificate: %w", err))
		}
	}

	if req.Secret == "" {
		return response.BadRequest(fmt.Errorf("the push target's secret is missing"))
	}

	fp := img.Fingerprint
	return d.task("Pushing image", map[string][]string{"images": {"/1.0/images/" + fp}}, func(ctx context.Context, op *operations.Operation) error {
		err := d.pushImage(ctx, op, img, req)
		if err != nil {
			return fmt.Errorf("pushing image %s to %s: %w", fp, req.Target, err)
		}

		d.events.SendLifecycle("default", "image-retrieved", "/1.0/images/"+fp, map[string]any{"target": req.Target})
		return nil
	})
}

// pushImage uploads img (its tarball, or a split image's two files) to req.Target and
// waits for the target's import.
func (d *Daemon) pushImage(ctx context.Context, op *operations.Operation, img *api.Image, req api.ImageExportPost) error {
	ctx, cancel := context.WithTimeout(ctx, pullTimeout)
	defer cancel()

	c, err := client.ConnectHTTPS(req.Target, client.HTTPSArgs{ServerCert: []byte(req.Certificate)})
	if err != nil {
		return err
	}

	err = d.images.EnsureFile(ctx, img.Fingerprint) // clustered: maybe on another member only
	if err != nil {
		return err
	}

	name := img.Filename
	if name == "" {
		name = img.Fingerprint + ".tar.gz"
	}

	body, err := d.pushBody(img.Fingerprint)
	if err != nil {
		return err
	}

	defer body.close()

	progress := &pullProgress{r: body.r, total: body.size, op: op, start: time.Now(), key: "upload_progress"}
	var remote *api.Operation
	if body.split != nil {
		body.split.Reader = progress
		remote, err = c.PushSplitImage(ctx, body.split, name, img.Fingerprint, req.Secret)
	} else {
		remote, err = c.PushImage(ctx, progress, body.size, name, img.Fingerprint, req.Secret)
	}

	if err != nil {
		return err
	}

	secret, _ := remote.Metadata["secret"].(string)
	done, err := c.WaitOperationWithSecret(ctx, remote.ID, secret)
	if err != nil {
		return fmt.Errorf("waiting for the target's import: %w", err)
	}

	if done.StatusCode != api.Success {
		return fmt.Errorf("the target's import failed: %s", done.Err)
	}

	return nil
}
