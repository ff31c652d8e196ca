package integration

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/shared/api"
)

// Denial of service by untrusted HTTPS callers (issue 11 review): bodies that never
// end, oversized bodies, and floods of refused requests into the audit log.

// untrustedConn opens a TLS connection without a client certificate from local (a
// loopback address).
func untrustedConn(t *testing.T, addr string, d *daemon, local string) net.Conn {
	t.Helper()
	nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(local)}, Timeout: 5 * time.Second}
	c, err := tls.DialWithDialer(nd, "tcp", addr, tlsConfigFor(d.serverCert()))
	if err != nil {
		t.Fatalf("dialing from %s: %v", local, err)
	}

	t.Cleanup(func() { _ = c.Close() })
	return c
}

// An untrusted caller that sends headers and part of a body is cut off after the
// body deadline, while a trusted upload may take longer than that.
func TestRemoteSlowBody(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	addr := d.listenHTTPS()
	trusted, _ := d.trustedClient(addr, "uploader")

	var slow []net.Conn
	for i := 0; i < 8; i++ {
		c := untrustedConn(t, addr, d, fmt.Sprintf("127.0.4.%d", 1+i%2))
		_, err := io.WriteString(c, "POST /1.0/certificates HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n{\"password\":\"")
		if err != nil {
			t.Fatal(err)
		}

		slow = append(slow, c)
	}

	// Positive control: a trusted client trickles a body for longer than the
	// untrusted deadline and is answered (the garbage fails later, in the operation).
	start := time.Now()
	pr, pw := io.Pipe()
	go func() {
		for i := 0; i < 14; i++ {
			_, _ = pw.Write(bytes.Repeat([]byte{'x'}, 1024))
			time.Sleep(time.Second)
		}

		_ = pw.Close()
	}()
	req, _ := http.NewRequest("POST", "https://"+addr+"/1.0/images", pr)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := trusted.hc.Do(req)
	if err != nil {
		t.Fatalf("trusted slow upload: %v", err)
	}

	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || time.Since(start) < 13*time.Second {
		t.Errorf("trusted slow upload: %d after %v", resp.StatusCode, time.Since(start))
	}

	// By now (14 s) every stalled untrusted body is past its 10 s: closed, not waiting.
	for i, c := range slow {
		_ = c.SetReadDeadline(time.Now().Add(3 * time.Second))
		_, err := io.ReadAll(c)
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Errorf("stalled untrusted body %d still held open after %v", i, time.Since(start))
		}
	}
}

// An untrusted caller's body is capped far below what a trusted one may send, before
// it is decoded: 120 stalled 4 MiB bodies took 860 MB of the daemon's memory.
func TestRemoteUntrustedBodyCap(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	addr := d.listenHTTPS()
	untrusted := newHTTPSClient(t, addr, tlsConfigFor(d.serverCert(), newClientCert(t)))

	body := `{"password":"` + strings.Repeat("a", 200<<10) + `"}`
	req, _ := http.NewRequest("POST", "https://"+addr+"/1.0/certificates", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := untrusted.hc.Do(req)
	if err != nil {
		t.Fatalf("untrusted 200 KiB body: %v", err)
	}

	data, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Errorf("untrusted 200 KiB body: %d %s, want 413", resp.StatusCode, data)
	}

	// Memory: stalled bodies up to the cap cost the daemon little.
	before := rssOf(t, d.cmd.Process.Pid)
	chunk := strings.Repeat("a", 2<<20)
	for i := 0; i < 40; i++ {
		c := untrustedConn(t, addr, d, fmt.Sprintf("127.0.5.%d", 1+i/20))
		_, _ = io.WriteString(c, "POST /1.0/certificates HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4194304\r\n\r\n{\"password\":\""+chunk)
	}

	time.Sleep(2 * time.Second)
	after := rssOf(t, d.cmd.Process.Pid)
	t.Logf("daemon RSS %d MiB before, %d MiB with 40 stalled 2 MiB bodies", before>>20, after>>20)
	if after-before > 32<<20 {
		t.Errorf("stalled untrusted bodies grew the daemon by %d MiB", (after-before)>>20)
	}
}

func rssOf(t *testing.T, pid int) int64 {
	t.Helper()
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatal(err)
	}

	for _, l := range strings.Split(string(data), "\n") {
		var kb int64
		if _, err := fmt.Sscanf(l, "VmRSS: %d kB", &kb); err == nil {
			return kb << 10
		}
	}

	t.Fatal("no VmRSS")
	return 0
}

// Refused untrusted requests do not reach the audit log's request lines; their
// refusals are rate-limited per source with the path cut short, and a flood from
// one source does not silence another's.
func TestRemoteAuditFlood(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	addr := d.listenHTTPS()
	hc := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: tlsConfigFor(d.serverCert())}}
	long := "/1.0/" + strings.Repeat("A", 60000)
	for i := 0; i < 100; i++ {
		req, _ := http.NewRequest("DELETE", "https://"+addr+long, nil)
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}

		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Fatalf("untrusted DELETE: %d", resp.StatusCode)
		}
	}

	// Another source after the flood.
	other := untrustedConn(t, addr, d, "127.0.6.1")
	_, _ = io.WriteString(other, "DELETE /1.0/instances/other-source HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
	_, _ = io.ReadAll(other)

	logs := d.log.String()
	requests := strings.Count(logs, `msg="api request" audit=true caller=untrusted`)
	refusals := strings.Count(logs, `msg="authentication failed"`)
	t.Logf("100 refused untrusted DELETEs: %d request lines, %d refusal lines, log %d bytes", requests, refusals, len(logs))
	if requests != 0 {
		t.Errorf("refused requests logged as api requests: %d lines", requests)
	}

	if refusals > 25 {
		t.Errorf("refusals not rate-limited: %d lines", refusals)
	}

	if len(logs) > 512<<10 {
		t.Errorf("the flood wrote %d KiB of log", len(logs)>>10)
	}

	if !d.waitLog("path=/1.0/instances/other-source reason=") {
		t.Errorf("a flood from one source suppressed another's refusal line (other: %v)", other.RemoteAddr())
	}
}

// A big trusted upload (the test image, about 70 MB) still goes through: the body is
// read whole (the operation reports the file's own fingerprint).
func TestRemoteTrustedImageUpload(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	addr := d.listenHTTPS()
	trusted, _ := d.trustedClient(addr, "uploader")

	f, err := os.Open(imagePath)
	if err != nil {
		t.Fatal(err)
	}

	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}

	want := hex.EncodeToString(h.Sum(nil))
	_, _ = f.Seek(0, io.SeekStart)
	code, del := d.raw("DELETE", "/1.0/images/"+want, nil)
	if code != http.StatusAccepted {
		t.Fatalf("deleting the image: %d %s", code, del.Error)
	}

	delOp, _ := del.MetadataAsOperation()
	if code, env := d.raw("GET", "/1.0/operations/"+delOp.ID+"/wait?timeout=60", nil); code != http.StatusOK {
		t.Fatalf("deleting the image: %d %s", code, env.Error)
	}

	req, _ := http.NewRequest("POST", "https://"+addr+"/1.0/images", f)
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := trusted.hc.Do(req)
	if err != nil {
		t.Fatalf("trusted image upload: %v", err)
	}

	data, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("trusted image upload: %d %s", resp.StatusCode, data)
	}

	env := envelope(t, data)
	op, err := env.MetadataAsOperation()
	if err != nil {
		t.Fatal(err)
	}

	_, w := trusted.do("GET", "/1.0/operations/"+op.ID+"/wait?timeout=120", nil)
	var done api.Operation
	_ = json.Unmarshal(envelope(t, w).Metadata, &done)
	if done.Status != "Success" || done.Metadata["fingerprint"] != want {
		t.Errorf("image import over HTTPS: %s %s, fingerprint %v want %s", done.Status, done.Err, done.Metadata["fingerprint"], want)
	}
}
