package integration

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"github.com/berth-dev/berth/shared/api"
)

// Regression tests for the review of the remote API (issue 11): each failed on the code
// the review found.

// Restricted certificates would be administrators (berthd has no projects to confine
// them to), so none can be made: not by a token, not added, not by an update.
func TestRemoteRestrictedRefused(t *testing.T) {
	d := startDaemon(t)
	addr := d.listenHTTPS()
	admin, adminCert := d.trustedClient(addr, "admin")
	pemOf := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: newClientCert(t).Certificate[0]}))

	refused := []struct{ method, path, body string }{
		{"POST", "/1.0/certificates", `{"name":"tenant","type":"client","restricted":true,"projects":["default"],"token":true}`},
		{"POST", "/1.0/certificates", `{"name":"tenant","type":"client","restricted":false,"projects":["default"],"token":true}`},
		{"POST", "/1.0/certificates", `{"name":"tenant","type":"client","restricted":true,"certificate":` + jsonString(pemOf) + `}`},
		{"PATCH", "/1.0/certificates/" + fingerprintOf(adminCert), `{"restricted":true,"projects":["default"]}`},
		{"PUT", "/1.0/certificates/" + fingerprintOf(adminCert), `{"name":"admin","type":"client","restricted":true,"projects":["default"]}`},
	}

	for _, tc := range refused {
		code, env := d.raw(tc.method, tc.path, strings.NewReader(tc.body))
		if code != http.StatusBadRequest || !strings.Contains(env.Error, "restricted certificates are not supported yet") {
			t.Errorf("%s %s %s: %d %q, want 400 naming the reason", tc.method, tc.path, tc.body, code, env.Error)
		}
	}

	// Nothing changed: the admin is still an unrestricted admin, no token waits, and
	// the certificate above was not added.
	if code, _ := admin.do("PATCH", "/1.0", map[string]any{"config": map[string]string{"core.remote_token_expiry": "1H"}}); code != http.StatusOK {
		t.Errorf("admin after the refused updates: PATCH /1.0 %d", code)
	}

	_, env := d.raw("GET", "/1.0/certificates?recursion=1", nil)
	var certs []api.Certificate
	_ = json.Unmarshal(env.Metadata, &certs)
	if len(certs) != 1 || certs[0].Restricted || len(certs[0].Projects) != 0 {
		t.Errorf("certificates after the refusals: %+v", certs)
	}

	_, env = d.raw("GET", "/1.0/operations?recursion=1", nil)
	var ops map[string][]api.Operation
	_ = json.Unmarshal(env.Metadata, &ops)
	for _, op := range ops["running"] {
		if op.Class == api.OperationClassToken {
			t.Errorf("a refused token request left a token: %+v", op)
		}
	}

	// Positive control: the same requests unrestricted go through.
	if code, env := d.raw("POST", "/1.0/certificates", strings.NewReader(`{"name":"laptop","type":"client","restricted":false,"projects":[],"token":true}`)); code != http.StatusAccepted {
		t.Errorf("unrestricted token: %d %s", code, env.Error)
	}

	if code, env := d.raw("PATCH", "/1.0/certificates/"+fingerprintOf(adminCert), strings.NewReader(`{"name":"admin2"}`)); code != http.StatusOK {
		t.Errorf("unrestricted PATCH: %d %s", code, env.Error)
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// Token secrets reach nobody but the administrator who asked, and GET /1.0/operations
// of administrators: not event listeners, not metrics certificates. Metrics are for
// administrators and metrics certificates only.
func TestRemoteSecretsAdminOnly(t *testing.T) {
	d := startDaemon(t)
	addr := d.listenHTTPS()
	server := d.serverCert()
	admin, _ := d.trustedClient(addr, "admin")

	scraperCert := newClientCert(t)
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: scraperCert.Certificate[0]}))
	if code, env := d.raw("POST", "/1.0/certificates", strings.NewReader(`{"name":"prom","type":"metrics","certificate":`+jsonString(certPEM)+`}`)); code != http.StatusCreated {
		t.Fatalf("adding the metrics certificate: %d %s", code, env.Error)
	}

	scraper := newHTTPSClient(t, addr, tlsConfigFor(server, scraperCert))
	stranger := newHTTPSClient(t, addr, tlsConfigFor(server, newClientCert(t)))

	dialer := websocket.Dialer{TLSClientConfig: admin.cfg, HandshakeTimeout: 5 * time.Second}
	evs, _, err := dialer.Dial("wss://"+addr+"/1.0/events?type=operation", nil)
	if err != nil {
		t.Fatalf("admin events: %v", err)
	}

	t.Cleanup(func() { _ = evs.Close() })
	id, secret := d.issueToken("laptop")

	// Every event of the token operation goes without its secret.
	_ = evs.SetReadDeadline(time.Now().Add(10 * time.Second))
	seen := 0
	for seen < 2 { // created (pending), running
		_, msg, err := evs.ReadMessage()
		if err != nil {
			t.Fatalf("events after %d token events: %v", seen, err)
		}

		if !strings.Contains(string(msg), id) {
			continue
		}

		seen++
		if strings.Contains(string(msg), secret) {
			t.Errorf("an operation event carries the token's secret: %s", msg)
		}
	}

	// The administrator still lists it with its secret (lxc config trust list-tokens).
	code, data := admin.do("GET", "/1.0/operations/"+id, nil)
	if code != http.StatusOK || !strings.Contains(string(data), secret) {
		t.Errorf("admin GET of the token operation: %d, secret shown %v", code, strings.Contains(string(data), secret))
	}

	// A metrics certificate scrapes and sees nothing else.
	if code, data := scraper.do("GET", "/1.0/metrics", nil); code != http.StatusOK || !strings.Contains(string(data), "lxd_uptime_seconds") {
		t.Errorf("metrics certificate GET /1.0/metrics: %d %.200s", code, data)
	}

	if code, _ := admin.do("GET", "/1.0/metrics", nil); code != http.StatusOK {
		t.Errorf("admin GET /1.0/metrics: %d", code)
	}

	for _, path := range []string{"/1.0/operations?recursion=1", "/1.0/operations/" + id, "/1.0/certificates", "/1.0/instances"} {
		if code, _ := scraper.do("GET", path, nil); code != http.StatusForbidden {
			t.Errorf("metrics certificate GET %s: %d, want 403", path, code)
		}
	}

	if _, resp, err := (&websocket.Dialer{TLSClientConfig: scraper.cfg, HandshakeTimeout: 5 * time.Second}).Dial("wss://"+addr+"/1.0/events", nil); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("metrics certificate events: %v", err)
	}

	for _, path := range []string{"/1.0/metrics", "/1.0/operations?recursion=1"} {
		if code, _ := stranger.do("GET", path, nil); code != http.StatusForbidden {
			t.Errorf("untrusted certificate GET %s: %d, want 403", path, code)
		}
	}
}

// execStreams starts a looping exec as c and connects its streams WITHOUT a client
// certificate, with the operation's secrets only. It returns stdout and the command's
// pid inside the container.
func execStreams(t *testing.T, d *daemon, c *httpsClient, addr, instance string) (*websocket.Conn, string) {
	t.Helper()
	code, data := c.do("POST", "/1.0/instances/"+instance+"/exec", map[string]any{
		"command":            []string{"sh", "-c", "echo pid $$; while true; do echo tick; sleep 1; done"},
		"wait-for-websocket": true, "interactive": false,
	})
	env := envelope(t, data)
	if code != http.StatusAccepted {
		t.Fatalf("exec: %d %s", code, env.Error)
	}

	op, _ := env.MetadataAsOperation()
	fds := opFds(t, *op)
	dialer := websocket.Dialer{TLSClientConfig: tlsConfigFor(d.serverCert()), HandshakeTimeout: 5 * time.Second}
	conns := map[string]*websocket.Conn{}
	for _, fd := range []string{"control", "0", "1", "2"} {
		conn, _, err := dialer.Dial("wss://"+addr+"/1.0/operations/"+op.ID+"/websocket?secret="+fds[fd], nil)
		if err != nil {
			t.Fatalf("fd %s: %v", fd, err)
		}

		t.Cleanup(func() { _ = conn.Close() })
		conns[fd] = conn
	}

	for _, fd := range []string{"control", "2"} {
		go func() {
			for {
				if _, _, err := conns[fd].ReadMessage(); err != nil {
					return
				}
			}
		}()
	}

	out := conns["1"]
	_ = out.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, msg, err := out.ReadMessage()
	if err != nil || !strings.HasPrefix(string(msg), "pid ") {
		t.Fatalf("first output: %q %v", msg, err)
	}

	return out, strings.Fields(string(msg))[1]
}

// A removed certificate's exec session ends, even when its streams were connected
// without the certificate (with the operation's secrets only): the streams close and
// the command dies. Another client's session goes on.
func TestRemoteExecEndsWithCertificate(t *testing.T) {
	d := startDaemon(t)
	addr := d.listenHTTPS()
	d.berth("launch", "debian/12", "c")
	d.waitRunning("c")
	a, certA := d.trustedClient(addr, "a")
	b, _ := d.trustedClient(addr, "b")

	outA, pidA := execStreams(t, d, a, addr, "c")
	outB, pidB := execStreams(t, d, b, addr, "c")
	alive := func(pid string) bool {
		_, err := d.inside("c", "test", "-d", "/proc/"+pid)
		return err == nil
	}

	tick := func(out *websocket.Conn) error {
		_ = out.SetReadDeadline(time.Now().Add(5 * time.Second))
		_, msg, err := out.ReadMessage()
		if err == nil && !strings.Contains(string(msg), "tick") {
			err = fmt.Errorf("unexpected output %q", msg)
		}

		return err
	}

	if err := tick(outA); err != nil || !alive(pidA) {
		t.Fatalf("a's session before removal: %v, pid %s alive %v", err, pidA, alive(pidA))
	}

	if code, env := d.raw("DELETE", "/1.0/certificates/"+fingerprintOf(certA), nil); code != http.StatusOK {
		t.Fatalf("removing a: %d %s", code, env.Error)
	}

	// a's stdout ends (an error that is not a read timeout) within seconds.
	var err error
	deadline := time.Now().Add(10 * time.Second)
	for err == nil && time.Now().Before(deadline) {
		err = tick(outA)
	}

	var ne net.Error
	if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
		t.Errorf("removed client's exec stream still open: %v", err)
	}

	for i := 0; alive(pidA) && i < 50; i++ {
		time.Sleep(200 * time.Millisecond)
	}

	if alive(pidA) {
		t.Errorf("removed client's command (pid %s in c) still runs", pidA)
	}

	// Control: b's session, connected the same way, still streams and runs.
	for i := 0; i < 3; i++ {
		if err := tick(outB); err != nil {
			t.Fatalf("the other client's session: %v", err)
		}
	}

	if !alive(pidB) {
		t.Errorf("the other client's command died")
	}

	if code, _ := a.do("GET", "/1.0/instances", nil); code != http.StatusForbidden {
		t.Errorf("removed a: %d", code)
	}
}

// tinyImage is a unified image tarball (metadata.yaml and an empty rootfs) whose
// fingerprint starts with prefix: a few dozen tries of a nonce property.
func tinyImage(t *testing.T, prefix string) ([]byte, string) {
	t.Helper()
	for nonce := 0; nonce < 100000; nonce++ {
		var buf bytes.Buffer
		gz := gzip.NewWriter(&buf)
		tw := tar.NewWriter(gz)
		meta := fmt.Sprintf("architecture: x86_64\ncreation_date: 1700000000\nproperties:\n  nonce: \"%d\"\n", nonce)
		for _, h := range []tar.Header{
			{Name: "metadata.yaml", Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(meta))},
			{Name: "rootfs/", Typeflag: tar.TypeDir, Mode: 0o755},
		} {
			h.ModTime = time.Unix(1700000000, 0)
			if err := tw.WriteHeader(&h); err != nil {
				t.Fatal(err)
			}

			if h.Typeflag == tar.TypeReg {
				_, _ = tw.Write([]byte(meta))
			}
		}

		_ = tw.Close()
		_ = gz.Close()
		sum := sha256.Sum256(buf.Bytes())
		fp := hex.EncodeToString(sum[:])
		if strings.HasPrefix(fp, prefix) {
			return buf.Bytes(), fp
		}
	}

	t.Fatalf("no image fingerprint starting with %q", prefix)
	return nil, ""
}

// An untrusted caller resolves an image prefix among public images only: a private
// image sharing the prefix neither makes it ambiguous nor shows at all.
func TestRemotePublicImagePrefix(t *testing.T) {
	d := startDaemon(t)
	addr := d.listenHTTPS()
	anon := newHTTPSClient(t, addr, tlsConfigFor(d.serverCert()))
	admin, _ := d.trustedClient(addr, "admin")

	_, env := d.raw("GET", "/1.0/images?recursion=1", nil)
	var images []api.Image
	_ = json.Unmarshal(env.Metadata, &images)
	if len(images) != 1 || images[0].Public {
		t.Fatalf("expected the one private test image: %s", env.Metadata)
	}

	private := images[0].Fingerprint
	prefix := private[:2]
	tarball, public := tinyImage(t, prefix)
	code, env, _ := d.rawH("POST", "/1.0/images", bytes.NewReader(tarball), map[string]string{"X-LXD-public": "true", "Content-Type": "application/octet-stream"})
	if code != http.StatusAccepted {
		t.Fatalf("importing the public image: %d %s", code, env.Error)
	}

	op, _ := env.MetadataAsOperation()
	_, env = d.raw("GET", "/1.0/operations/"+op.ID+"/wait?timeout=60", nil)
	var done api.Operation
	_ = json.Unmarshal(env.Metadata, &done)
	if done.StatusCode != api.Success {
		t.Fatalf("import: %s %s", done.Status, done.Err)
	}

	t.Cleanup(func() { d.raw("DELETE", "/1.0/images/"+public, nil) })

	// The prefix names the public image for the untrusted caller.
	code, data := anon.do("GET", "/1.0/images/"+prefix, nil)
	var img api.Image
	_ = json.Unmarshal(envelope(t, data).Metadata, &img)
	if code != http.StatusOK || img.Fingerprint != public {
		t.Errorf("untrusted GET /1.0/images/%s: %d %s, want the public image", prefix, code, data)
	}

	// The private image's own longer prefix and full fingerprint are not found.
	for _, fp := range []string{private[:len(commonPrefix(private, public))+1], private} {
		if code, data := anon.do("GET", "/1.0/images/"+fp, nil); code != http.StatusNotFound {
			t.Errorf("untrusted GET /1.0/images/%s of the private image: %d %s, want 404", fp, code, data)
		}
	}

	// Control: to an administrator the prefix is ambiguous, as both images match.
	if code, data := admin.do("GET", "/1.0/images/"+prefix, nil); code != http.StatusBadRequest || !strings.Contains(string(data), "ambiguous") {
		t.Errorf("admin GET /1.0/images/%s: %d %s, want 400 ambiguous", prefix, code, data)
	}
}

func commonPrefix(a, b string) string {
	n := 0
	for n < len(a) && n < len(b) && a[n] == b[n] {
		n++
	}

	return a[:n]
}
