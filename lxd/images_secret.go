package main

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/ws"
)

// Image secrets, as LXD's: POST /1.0/images/{fp}/secret makes a token operation whose
// metadata holds a secret; an untrusted client that has it may read that one image (the
// record once, then the file once: the export ends the token). A token also ends when
// cancelled (DELETE /1.0/operations/{id}) and after imageSecretLifetime, which LXD does
// not have: an unused secret should not open a private image forever.
const (
	imageSecretLifetime = time.Hour
	maxImageSecrets     = 64
	imageSecretDesc     = "Image secret"
)

// imageSecretReads records the tokens whose one read of the image record is used.
var imageSecretReads sync.Map // operation id → struct{}

// imageSecretMu makes finding a token and using it up one step: Cancel answers nil to a
// second caller while a first one's cancel is under way, so two exports racing past the
// status check would both be granted.
var imageSecretMu sync.Mutex

// imageSecretMatched, if set (tests only), runs between finding a token and using it.
var imageSecretMatched func()

// POST /1.0/images/{fingerprint}/secret
func imageSecretPost(d *Daemon, r *http.Request) response.Response {
	ip, err := d.imagesProject(r.Context(), projectOf(r))
	if err != nil {
		return response.SmartError(err)
	}

	img, err := d.images.Get(r.Context(), ip, pathVar(r, "fingerprint"))
	if err != nil {
		return response.SmartError(err)
	}

	live := 0
	for _, op := range d.ops.List() {
		if op.Class() == api.OperationClassToken && op.Status() == api.Running && imageOfSecret(op) != "" {
			live++
		}
	}

	if live >= maxImageSecrets {
		return response.SmartError(api.StatusErrorf(http.StatusServiceUnavailable, "%d image secrets are waiting already: cancel some first", live))
	}

	// The resource names the project whose image it is: the secret opens the image only
	// from a project that uses that image set.
	resources := map[string][]string{"images": {imageURL(ip, img.Fingerprint)}}
	op, err := d.ops.Create(api.OperationClassToken, imageSecretDesc, resources, map[string]any{"secret": ws.NewSecret()}, nil, nil,
		func(*operations.Operation) error { return nil })
	if err == nil {
		err = op.Start()
	}

	if err != nil {
		return response.InternalError(err)
	}

	timer := time.AfterFunc(imageSecretLifetime, func() { _ = op.Cancel() })
	go func() {
		<-op.Done()
		timer.Stop()
		imageSecretReads.Delete(op.ID())
	}()

	return response.OperationResponse(op)
}

// imageOfSecret is the image an image secret token is for, its URL after /1.0/images/
// (the fingerprint, and ?project= outside the default project; "" for other operations).
func imageOfSecret(op *operations.Operation) string {
	if op.Class() != api.OperationClassToken || op.Render().Description != imageSecretDesc {
		return ""
	}

	imgs := op.Render().Resources["images"]
	if len(imgs) != 1 || len(imgs[0]) <= len("/1.0/images/") {
		return ""
	}

	return imgs[0][len("/1.0/images/"):]
}

// secretTarget is what imageOfSecret answers for image fp of image set ip (the project
// whose images they are: db.Tx.ImagesProject).
func secretTarget(ip, fp string) string {
	return strings.TrimPrefix(imageURL(ip, fp), "/1.0/images/")
}

// imageSecretGrants reports whether secret is a live image secret for exactly image fp
// (a full fingerprint: a secret never resolves prefixes) of the image set project proj
// uses, and uses it up: the first record read (export false) or the file read (export
// true, which ends the token).
func (d *Daemon) imageSecretGrants(ctx context.Context, proj, fp, secret string, export bool) bool {
	if secret == "" || len(secret) > 128 {
		return false
	}

	ip, err := d.imagesProject(ctx, proj)
	if err != nil {
		return false
	}

	imageSecretMu.Lock()
	defer imageSecretMu.Unlock()

	// Every live token is compared, in constant time, whatever matched before.
	var found *operations.Operation
	for _, op := range d.ops.List() {
		if op.Status() != api.Running || imageOfSecret(op) != secretTarget(ip, fp) {
			continue
		}

		want, _ := op.Metadata()["secret"].(string)
		if ws.SecretMatches(secret, want) {
			found = op
		}
	}

	if found == nil {
		return false
	}

	if imageSecretMatched != nil {
		imageSecretMatched()
	}

	if export {
		return found.Cancel() == nil // fails when it ended meanwhile
	}

	_, used := imageSecretReads.LoadOrStore(found.ID(), struct{}{})

	return !used && found.Status() == api.Running
}

// revokeImageSecrets ends the secrets of image fp of image set ip, which was deleted: the
// same file imported again has the same fingerprint, and a secret must not open it.
func (d *Daemon) revokeImageSecrets(ip, fp string) {
	for _, op := range d.ops.List() {
		if op.Status() == api.Running && imageOfSecret(op) == secretTarget(ip, fp) {
			_ = op.Cancel()
		}
	}
}
