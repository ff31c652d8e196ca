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

// A restricted certificate (restricted: true, projects: [p1, p3]) sees and touches only
// p1: other projects and the default one are 403, so is p3, which is in its list but not
// restricted (restricted=true), lists are filtered, another project's
// instance is out of reach by its key too, another project's operation is 404, and the
// server's config, certificates and shared objects stay an administrator's. The admin
// sees everything (positive control). Before projects every restricted certificate was
// refused; an unrestricted one with projects still is (it would believe itself confined).
func TestRemoteRestrictedProjects(t *testing.T) {
	parallel(t)
	requireSetup(t)
	d := startDaemon(t)
	addr := d.listenHTTPS()
	admin, adminCert := d.trustedClient(addr, "admin")
	l := newLXCRunner(t, d)
	l.must("project", "create", "p1", "-c", "restricted=true", "-c", "features.images=false")
	l.must("project", "create", "p2", "-c", "restricted=true", "-c", "features.images=false")
	l.must("project", "create", "p3", "-c", "features.images=false") // in the tenant's list, but not restricted

	l.must("init", "debian/12", "c1", "--project", "p2")
	l.must("init", "debian/12", "c1")
	t.Cleanup(func() {
		_, _ = l.run("delete", "-f", "c1", "--project", "p2")
		_, _ = l.run("delete", "-f", "c1")
		_, _ = l.run("delete", "-f", "c9", "--project", "p1")
		for _, p := range []string{"p1", "p2", "p3"} {
			_, _ = l.run("project", "delete", p)
		}
	})

	// An unrestricted certificate with projects is refused, as before.
	code, env := d.raw("PATCH", "/1.0/certificates/"+fingerprintOf(adminCert), strings.NewReader(`{"restricted":false,"projects":["p1"]}`))
	if code != http.StatusBadRequest {
		t.Errorf("unrestricted certificate with projects: %d %s", code, env.Error)
	}

	code, env = d.raw("POST", "/1.0/certificates", strings.NewReader(`{"name":"tenant","type":"client","restricted":true,"projects":["p1","p3"],"token":true}`))
	if code != http.StatusAccepted {
		t.Fatalf("restricted token: %d %s", code, env.Error)
	}

	var tok api.Operation
	_ = json.Unmarshal(env.Metadata, &tok)
	tenant := newHTTPSClient(t, addr, tlsConfigFor(d.serverCert(), newClientCert(t)))
	if code, env := tenant.join(tok.Metadata["secret"].(string)); code != http.StatusCreated {
		t.Fatalf("joining as the tenant: %d %s", code, env.Error)
	}

	if tenant.authOf() != "trusted" {
		t.Fatal("the restricted certificate is not trusted for GET /1.0")
	}

	status := func(c *httpsClient, method, path string, body any) (int, api.Response) {
		code, data := c.do(method, path, body)
		return code, envelope(t, data)
	}

	// Out of its projects: 403 (or 404 for what it may not know exists).
	for _, tc := range []struct {
		method, path string
		want         int
	}{
		{"GET", "/1.0/instances", http.StatusForbidden},
		{"GET", "/1.0/instances?project=p2", http.StatusForbidden},
		{"GET", "/1.0/instances?project=p3", http.StatusForbidden}, // its own, but not restricted
		{"POST", "/1.0/instances?project=p3", http.StatusForbidden},
		{"GET", "/1.0/instances/c1?project=p2", http.StatusForbidden},
		{"DELETE", "/1.0/instances/c1?project=p2", http.StatusForbidden},
		{"GET", "/1.0/instances/p2_c1?project=p1", http.StatusNotFound},
		{"GET", "/1.0/projects/p2", http.StatusForbidden},
		{"DELETE", "/1.0/projects/p1", http.StatusForbidden},
		{"POST", "/1.0/projects", http.StatusForbidden},
		{"GET", "/1.0/certificates", http.StatusForbidden},
		{"POST", "/1.0/profiles?project=p1", http.StatusForbidden},
		{"PATCH", "/1.0?project=p1", http.StatusForbidden},
	} {
		code, env := status(tenant, tc.method, tc.path, map[string]any{"name": "x"})
		if code != tc.want {
			t.Errorf("tenant %s %s: %d %s, want %d", tc.method, tc.path, code, env.Error, tc.want)
		}
	}

	// Lists hold its projects' objects only.
	_, env = status(tenant, "GET", "/1.0/projects", nil)
	if string(env.Metadata) != `["/1.0/projects/p1","/1.0/projects/p3"]` {
		t.Errorf("tenant's projects: %s", env.Metadata)
	}

	_, env = status(tenant, "GET", "/1.0/instances?all-projects=true", nil)
	if string(env.Metadata) != `[]` {
		t.Errorf("tenant's instances of all projects: %s", env.Metadata)
	}

	// In its project it works: create, and wait for its own operation.
	code, env = status(tenant, "POST", "/1.0/instances?project=p1", map[string]any{"name": "c9", "source": map[string]string{"type": "image", "alias": "debian/12"}})
	if code != http.StatusAccepted {
		t.Fatalf("tenant create in p1: %d %s", code, env.Error)
	}

	var op api.Operation
	_ = json.Unmarshal(env.Metadata, &op)
	code, env = status(tenant, "GET", "/1.0/operations/"+op.ID+"/wait?project=p1", nil)
	_ = json.Unmarshal(env.Metadata, &op)
	if code != http.StatusOK || op.Status != "Success" {
		t.Fatalf("tenant waits for its create: %d %s %+v", code, env.Error, op)
	}

	_, env = status(tenant, "GET", "/1.0/instances?project=p1", nil)
	if string(env.Metadata) != `["/1.0/instances/c9?project=p1"]` {
		t.Errorf("tenant's instances in p1: %s", env.Metadata)
	}

	// Another project's operation is not the tenant's to see.
	code, env = d.raw("PATCH", "/1.0/instances/c1?project=p2", strings.NewReader(`{"description":"x"}`))
	if code != http.StatusAccepted {
		t.Fatalf("admin PATCH in p2: %d %s", code, env.Error)
	}

	_ = json.Unmarshal(env.Metadata, &op)
	if code, _ := status(tenant, "GET", "/1.0/operations/"+op.ID+"?project=p1", nil); code != http.StatusNotFound {
		t.Errorf("tenant reads p2's operation: %d", code)
	}

	_, env = status(tenant, "GET", "/1.0/operations?project=p1&recursion=1", nil)
	if strings.Contains(string(env.Metadata), op.ID) || strings.Contains(string(env.Metadata), tok.ID) {
		t.Errorf("tenant lists another project's operation or a token: %s", env.Metadata)
	}

	// Positive control: the administrator sees every project's instances.
	code, data := admin.do("GET", "/1.0/instances?all-projects=true", nil)
	out := string(envelope(t, data).Metadata)
	if code != http.StatusOK || strings.Count(out, "/1.0/instances/c1") != 2 || !strings.Contains(out, "c9") {
		t.Errorf("admin's instances of all projects: %d %s", code, out)
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
	parallel(t)
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
	parallel(t)
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
	parallel(t)
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
