package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/lxd/cgroup"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/test/testutil"
)

// uniqueName returns an instance name no other test on this host uses, for
// checks that look at the host as a whole.
func uniqueName(prefix string) string {
	return fmt.Sprintf("%s%d", prefix, os.Getpid()%1000000)
}

// rawH sends a request with headers and returns the status, the decoded envelope and the
// ETag. A body that is an io.Reader is sent as it is (malformed input tests); anything
// else is encoded as JSON.
func (d *daemon) rawH(method, path string, body any, headers map[string]string) (int, api.Response, string) {
	d.t.Helper()
	hc := &http.Client{Transport: &http.Transport{DisableKeepAlives: true, DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
		return (&net.Dialer{}).DialContext(ctx, "unix", filepath.Join(d.dir, "unix.socket"))
	}}}

	return requestEnvelope(d.t, hc, method, path, body, headers)
}

// requestEnvelope sends one request through hc and decodes the LXD envelope whatever the
// status; it returns the status, the envelope and the ETag. A body that is an io.Reader is
// sent as it is (malformed input tests); anything else is encoded as JSON.
func requestEnvelope(t testing.TB, hc *http.Client, method, path string, body any, headers map[string]string) (int, api.Response, string) {
	t.Helper()

	rdr, isReader := body.(io.Reader)
	if body != nil && !isReader {
		b, err := json.Marshal(body)
		if err != nil {
			t.Fatal(err)
		}

		rdr = bytes.NewReader(b)
	}

	req, err := http.NewRequest(method, "http://unix.socket"+path, rdr)
	if err != nil {
		t.Fatal(err)
	}

	for k, v := range headers {
		req.Header.Set(k, v)
	}

	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}

	defer resp.Body.Close()
	env := api.Response{}
	data, _ := io.ReadAll(resp.Body)
	err = json.Unmarshal(data, &env)
	if err != nil {
		t.Fatalf("%s %s: body is not an envelope: %q", method, path, data)
	}

	return resp.StatusCode, env, resp.Header.Get("ETag")
}

// insideCg runs a shell script in the instance's namespaces AND its v1/v2 resource
// cgroups, the way a process started by the container's own init would be limited
// (plain nsenter leaves the process in the host's cgroups).
func (d *daemon) insideCg(name, script string) (string, error) {
	d.t.Helper()
	join, err := d.cgroupJoin(name)
	if err != nil {
		d.t.Fatal(err)
	}

	pid := d.initPID(name)
	host := join + fmt.Sprintf(`exec nsenter -t %d -a -- sh -c "$1"`, pid)
	cmd := exec.Command("sh", "-c", host, "sh", script)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "LANG=C.UTF-8"}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// cgroupJoin is shell that moves the shell itself into the container's cgroups.
func (d *daemon) cgroupJoin(name string) (string, error) {
	l, err := cgroup.Detect()
	if err != nil {
		return "", err
	}

	var b strings.Builder
	for _, c := range []string{"memory", "pids", "cpu", "cpuacct", "cpuset", "blkio"} {
		mnt, ok := l.V1[c]
		if ok {
			fmt.Fprintf(&b, "echo $$ > %s/%s/%s/cgroup.procs || exit 99\n", mnt, cgroup.ParentFor(d.dir), name)
		}
	}

	if len(l.V1) == 0 {
		fmt.Fprintf(&b, "echo $$ > %s/%s/%s/cgroup.procs || exit 99\n", l.Unified, cgroup.ParentFor(d.dir), name)
	}

	return b.String(), nil
}

// v1File reads a v1 control file of the instance's group, "" on cgroup2-only hosts.
func (d *daemon) v1File(t *testing.T, name, ctrl, file string) string {
	t.Helper()
	l, err := cgroup.Detect()
	if err != nil {
		t.Fatal(err)
	}

	mnt, ok := l.V1[ctrl]
	if !ok {
		return ""
	}

	b, err := os.ReadFile(filepath.Join(mnt, cgroup.ParentFor(d.dir), name, file))
	if err != nil {
		t.Fatal(err)
	}

	return strings.TrimSpace(string(b))
}

// haveLXCFS says whether the host has lxcfs, which the /proc view checks need.
func haveLXCFS(t *testing.T) bool {
	_, err := exec.LookPath("lxcfs")
	if err != nil {
		if testutil.Strict() {
			t.Fatal("lxcfs (Debian package lxcfs) is not installed")
		}

		return false
	}

	return true
}
