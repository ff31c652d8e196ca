package integration

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/test/testutil"
)

// TestContainersAlias drives /1.0/containers as a tool written for LXD before instances
// existed does: create, start and exec through the old paths, objects with the fields of
// LXD's Container, URLs listed under /1.0/containers; then the same through the stock
// lxc's `lxc query`.
func TestContainersAlias(t *testing.T) {
	parallel(t)
	d := startDaemon(t)

	// Create and start through /1.0/containers.
	wait := func(what string, code int, env api.Response) api.Operation {
		t.Helper()
		if code != http.StatusAccepted {
			t.Fatalf("%s: %d %s", what, code, env.Error)
		}

		var op api.Operation
		_ = json.Unmarshal(env.Metadata, &op)
		code, env = d.raw("GET", "/1.0/operations/"+op.ID+"/wait?timeout=120", nil)
		_ = json.Unmarshal(env.Metadata, &op)
		if code != http.StatusOK || op.Status != "Success" {
			t.Fatalf("%s: operation %d %s %s", what, code, op.Status, op.Err)
		}

		return op
	}

	code, env := d.raw("POST", "/1.0/containers", strings.NewReader(`{"name":"a1","source":{"type":"image","alias":"debian/12"}}`))
	op := wait("POST /1.0/containers", code, env)
	if got := op.Resources["containers"]; len(got) != 1 || !strings.HasSuffix(got[0], "/a1") {
		t.Errorf("create operation resources: %v", op.Resources)
	}

	code, env = d.raw("PUT", "/1.0/containers/a1/state", strings.NewReader(`{"action":"start","timeout":30}`))
	wait("PUT /1.0/containers/a1/state", code, env)
	d.waitRunning("a1")

	// The collection lists URLs under the collection asked.
	var urls []string
	code, env = d.raw("GET", "/1.0/containers", nil)
	if code != http.StatusOK || json.Unmarshal(env.Metadata, &urls) != nil || len(urls) != 1 || urls[0] != "/1.0/containers/a1" {
		t.Errorf("GET /1.0/containers: %d %s", code, env.Metadata)
	}

	code, env = d.raw("GET", "/1.0/instances", nil)
	if code != http.StatusOK || json.Unmarshal(env.Metadata, &urls) != nil || len(urls) != 1 || urls[0] != "/1.0/instances/a1" {
		t.Errorf("GET /1.0/instances after the alias: %d %s", code, env.Metadata)
	}

	// A container has every field of LXD 5.0's Container (LXD serves the instance object,
	// a superset, under both names); its state is the instance state.
	var obj map[string]json.RawMessage
	code, env = d.raw("GET", "/1.0/containers/a1", nil)
	if code != http.StatusOK || json.Unmarshal(env.Metadata, &obj) != nil {
		t.Fatalf("GET /1.0/containers/a1: %d %s", code, env.Error)
	}

	for _, f := range []string{"architecture", "config", "devices", "ephemeral", "profiles", "stateful", "description", "created_at", "expanded_config", "expanded_devices", "name", "status", "status_code", "last_used_at", "location"} {
		if _, ok := obj[f]; !ok {
			t.Errorf("GET /1.0/containers/a1 lacks %q: %s", f, env.Metadata)
		}
	}

	var st api.InstanceState
	code, env = d.raw("GET", "/1.0/containers/a1/state", nil)
	if code != http.StatusOK || json.Unmarshal(env.Metadata, &st) != nil || st.Status != "Running" || st.Pid == 0 {
		t.Errorf("GET /1.0/containers/a1/state: %d %s", code, env.Metadata)
	}

	// Exec with recorded output: the output's URLs are under /1.0/containers and serve it.
	code, env = d.raw("POST", "/1.0/containers/a1/exec", strings.NewReader(`{"command":["sh","-c","echo via-containers"],"record-output":true,"wait-for-websocket":false}`))
	op = wait("POST /1.0/containers/a1/exec", code, env)
	outURLs, _ := op.Metadata["output"].(map[string]any)
	stdout, _ := outURLs["1"].(string)
	if !strings.HasPrefix(stdout, "/1.0/containers/a1/logs/") || op.Metadata["return"] != float64(0) {
		t.Fatalf("exec through /1.0/containers: %v", op.Metadata)
	}

	body := d.rawBody(stdout)
	if strings.TrimSpace(body) != "via-containers" {
		t.Errorf("GET %s: %q", stdout, body)
	}

	code, env = d.raw("GET", "/1.0/containers/a1/logs", nil)
	if code != http.StatusOK || json.Unmarshal(env.Metadata, &urls) != nil || len(urls) < 2 || !strings.HasPrefix(urls[1], "/1.0/containers/a1/logs/") {
		t.Errorf("GET /1.0/containers/a1/logs: %d %s", code, env.Metadata)
	}

	// Snapshots, listed under the collection asked.
	code, env = d.raw("POST", "/1.0/containers/a1/snapshots", strings.NewReader(`{"name":"s1"}`))
	wait("POST /1.0/containers/a1/snapshots", code, env)
	code, env = d.raw("GET", "/1.0/containers/a1/snapshots", nil)
	if code != http.StatusOK || json.Unmarshal(env.Metadata, &urls) != nil || len(urls) != 1 || urls[0] != "/1.0/containers/a1/snapshots/s1" {
		t.Errorf("GET /1.0/containers/a1/snapshots: %d %s", code, env.Metadata)
	}

	// What berthd does not serve answers 501 under the old name too, naming it.
	code, env = d.raw("GET", "/1.0/containers/a1/sftp", nil)
	if code != http.StatusNotImplemented || !strings.Contains(env.Error, "/1.0/containers/{name}/sftp is not implemented in Berth") {
		t.Errorf("GET /1.0/containers/a1/sftp: %d %s", code, env.Error)
	}

	// The stock lxc's `lxc query` on the old paths.
	lxcBin := testutil.LookPath(t, "lxc", "Debian package lxd-client")
	conf := t.TempDir()
	query := func(args ...string) string {
		t.Helper()
		cmd := exec.Command(lxcBin, append([]string{"query"}, args...)...)
		cmd.Env = append(os.Environ(), "LXD_DIR="+d.dir, "LXD_CONF="+conf)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("lxc query %s: %v\n%s", strings.Join(args, " "), err, out)
		}

		return string(out)
	}

	out := query("/1.0/containers")
	if !strings.Contains(out, `"/1.0/containers/a1"`) {
		t.Errorf("lxc query /1.0/containers:\n%s", out)
	}

	out = query("/1.0/containers/a1/state")
	if !strings.Contains(out, `"status": "Running"`) {
		t.Errorf("lxc query /1.0/containers/a1/state:\n%s", out)
	}

	out = query("/1.0/containers?recursion=1")
	if !strings.Contains(out, `"name": "a1"`) || !strings.Contains(out, `"expanded_config"`) {
		t.Errorf("lxc query /1.0/containers?recursion=1:\n%s", out)
	}

	out = query("--wait", "-X", "PUT", "-d", `{"action":"stop","force":true,"timeout":30}`, "/1.0/containers/a1/state")
	if !strings.Contains(out, `"status": "Success"`) {
		t.Errorf("lxc query --wait PUT /1.0/containers/a1/state (stop):\n%s", out)
	}

	out = query("--wait", "-X", "POST", "-d", `{"name":"a2"}`, "/1.0/containers/a1")
	if !strings.Contains(out, `"status": "Success"`) {
		t.Errorf("lxc query --wait POST /1.0/containers/a1 (rename):\n%s", out)
	}

	out = query("/1.0/containers")
	if !strings.Contains(out, `"/1.0/containers/a2"`) {
		t.Errorf("after renaming through /1.0/containers:\n%s", out)
	}

	query("--wait", "-X", "DELETE", "/1.0/containers/a2")
	_, err := os.Stat(filepath.Join(d.dir, "instances", "a2"))
	if !os.IsNotExist(err) {
		t.Errorf("DELETE /1.0/containers/a2 left its directory: %v", err)
	}
}

// rawBody GETs path and returns the body as it is (a log file, not an envelope).
func (d *daemon) rawBody(path string) string {
	d.t.Helper()
	hc := &http.Client{Timeout: time.Minute, Transport: &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", filepath.Join(d.dir, "unix.socket"))
	}}}

	resp, err := hc.Get("http://unix.socket" + path)
	if err != nil {
		d.t.Fatal(err)
	}

	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		d.t.Fatalf("GET %s: %d %v %s", path, resp.StatusCode, err, data)
	}

	return string(data)
}
