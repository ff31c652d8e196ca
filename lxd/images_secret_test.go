package main

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/mux"

	"github.com/berth-dev/berth/lxd/events"
	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/ws"
)

// newSecretToken makes an image secret token for fp as imageSecretPost does.
func newSecretToken(t *testing.T, d *Daemon, fp string) (*operations.Operation, string) {
	t.Helper()

	secret := ws.NewSecret()
	op, err := d.ops.Create(api.OperationClassToken, imageSecretDesc, map[string][]string{"images": {"/1.0/images/" + fp}},
		map[string]any{"secret": secret}, nil, nil, func(*operations.Operation) error { return nil })
	if err == nil {
		err = op.Start()
	}

	if err != nil {
		t.Fatal(err)
	}

	return op, secret
}

// TestImageSecretExportOnce: an image secret opens one export, even to two clients
// racing with it. Cancel answers nil to a second caller while the first one's cancel is
// under way, so a second export that found the token running before the first used it
// was granted too. imageSecretMatched holds the first racer until the second has found
// the token, and the second until the first is inside Cancel: without the lock around
// find-and-use both are granted; with it the waits time out and one is.
func TestImageSecretExportOnce(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	ev := events.NewServer(log)
	d := &Daemon{log: log, events: ev, ops: operations.NewRegistry(ev, log)}
	fp := strings.Repeat("ab", 32)

	secret := ws.NewSecret()
	inCancel, secondDone := make(chan struct{}), make(chan struct{})
	op, err := d.ops.Create(api.OperationClassToken, imageSecretDesc, map[string][]string{"images": {"/1.0/images/" + fp}},
		map[string]any{"secret": secret}, nil, nil, func(*operations.Operation) error {
			close(inCancel)
			select {
			case <-secondDone:
			case <-time.After(time.Second):
			}

			return nil
		})
	if err == nil {
		err = op.Start()
	}

	if err != nil {
		t.Fatal(err)
	}

	var arrived atomic.Int32
	bothFound := make(chan struct{})
	imageSecretMatched = func() {
		if arrived.Add(1) == 2 {
			close(bothFound)
			select { // the second waits for the first to be using the token up
			case <-inCancel:
			case <-time.After(time.Second):
			}

			return
		}

		select { // the first waits for the second to find the token
		case <-bothFound:
		case <-time.After(time.Second):
		}
	}
	t.Cleanup(func() { imageSecretMatched = nil })

	var granted atomic.Int32
	var wg sync.WaitGroup
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if d.imageSecretGrants(context.Background(), "default", fp, secret, true) {
				granted.Add(1)
			}

			if i == 1 {
				close(secondDone)
			}
		}()
	}

	wg.Wait()

	if n := granted.Load(); n != 1 {
		t.Errorf("one secret granted %d exports", n)
	}

	if op.Status() == api.Running {
		t.Error("the token is still running after its export")
	}
}

// TestImageSecretScope: a secret opens its own image only, by full fingerprint, one
// record read and one export; a wrong or empty secret nothing.
func TestImageSecretScope(t *testing.T) {
	log := slog.New(slog.DiscardHandler)
	ev := events.NewServer(log)
	d := &Daemon{log: log, events: ev, ops: operations.NewRegistry(ev, log)}
	fp, other := strings.Repeat("ab", 32), strings.Repeat("cd", 32)
	_, secret := newSecretToken(t, d, fp)

	for _, tc := range []struct{ fp, secret string }{
		{other, secret}, {fp[:12], secret}, {fp, ""}, {fp, ws.NewSecret()}, {fp, secret + "0"}, {fp, strings.Repeat("a", 1<<20)},
	} {
		if d.imageSecretGrants(context.Background(), "default", tc.fp, tc.secret, false) || d.imageSecretGrants(context.Background(), "default", tc.fp, tc.secret, true) {
			t.Errorf("granted %.16q with secret %.16q", tc.fp, tc.secret)
		}
	}

	if !d.imageSecretGrants(context.Background(), "default", fp, secret, false) {
		t.Fatal("the secret's first record read refused")
	}

	if d.imageSecretGrants(context.Background(), "default", fp, secret, false) {
		t.Error("the secret granted a second record read")
	}

	if !d.imageSecretGrants(context.Background(), "default", fp, secret, true) || d.imageSecretGrants(context.Background(), "default", fp, secret, true) {
		t.Error("the secret did not grant exactly one export")
	}
}

// TestImageDeleteRevokesSecrets: deleting an image ends its secrets; else one stayed
// valid for up to imageSecretLifetime and opened the image again if the same file was
// imported meanwhile (its fingerprint is the same), though an administrator had removed it.
func TestImageDeleteRevokesSecrets(t *testing.T) {
	fp := strings.Repeat("ab", 32)
	cfg := fakeConfig{Dir: t.TempDir()}
	cfg.Images = append(cfg.Images, struct {
		Fingerprint string   `json:"fingerprint"`
		Aliases     []string `json:"aliases"`
	}{Fingerprint: fp})

	d, err := newFakeDaemon(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = d.db.Close() })

	op, _ := newSecretToken(t, d, fp)
	r := httptest.NewRequest(http.MethodDelete, "/1.0/images/"+fp, nil)
	r = mux.SetURLVars(r, map[string]string{"fingerprint": fp})
	w := httptest.NewRecorder()
	d.render(w, r, imageDelete(d, r))
	if w.Code != http.StatusAccepted {
		t.Fatalf("DELETE: %d %s", w.Code, w.Body)
	}

	if op.Status() == api.Running {
		t.Error("the image's secret is still live after the image was deleted")
	}
}
