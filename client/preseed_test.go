package client_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/shared/api"
)

// lxdPreseed is LXD's documented preseed example (doc/preseed.md of LXD 5.0), with a
// number where the server config wants a string, as LXD's own example has it.
const lxdPreseed = `config:
  core.https_address: 192.168.1.1:9999
  images.auto_update_interval: 15
networks:
- name: lxdbr0
  type: bridge
  config:
    ipv4.address: auto
    ipv6.address: none
    ipv4.nat: true
storage_pools:
- name: data
  driver: dir
  config:
    size: 5
profiles:
- name: default
  devices:
    root:
      path: /
      pool: data
      type: disk
projects:
- name: p1
  description: a project
`

func TestParsePreseed(t *testing.T) {
	p, err := client.ParsePreseed([]byte(lxdPreseed))
	if err != nil {
		t.Fatal(err)
	}

	if p.Networks[0].Config["ipv4.nat"] != "true" || p.StoragePools[0].Config["size"] != "5" {
		t.Errorf("scalars are not strings as LXD reads them: %+v %+v", p.Networks[0].Config, p.StoragePools[0].Config)
	}

	if p.Profiles[0].Devices["root"]["pool"] != "data" || p.Projects[0].Description != "a project" {
		t.Errorf("parsed %+v", p)
	}

	empty, err := client.ParsePreseed(nil)
	if err != nil || !empty.IsEmpty() {
		t.Errorf("an empty preseed: %v %+v", err, empty)
	}
}

// joinToken makes a join token for name naming certPEM's fingerprint.
func joinToken(t *testing.T, name, certPEM string) string {
	t.Helper()
	block, _ := pem.Decode([]byte(certPEM))
	sum := sha256.Sum256(block.Bytes)
	data, _ := json.Marshal(api.ClusterMemberJoinToken{ServerName: name, Fingerprint: hex.EncodeToString(sum[:]),
		Addresses: []string{"10.0.0.1:8443"}, Secret: "s3cret", ExpiresAt: time.Now().Add(time.Hour).Format(time.RFC3339)})
	return base64.StdEncoding.EncodeToString(data)
}

func selfSigned(t *testing.T) string {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}

	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}

	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
}

func TestParsePreseedJoin(t *testing.T) {
	cert, other := selfSigned(t), selfSigned(t)
	tok := joinToken(t, "m2", cert)
	p, err := client.ParsePreseed([]byte("config:\n  core.https_address: 10.0.0.2:8443\ncluster:\n  enabled: true\n  cluster_token: " + tok + "\n"))
	if err != nil {
		t.Fatal(err)
	}

	if !p.IsJoin() || p.Cluster.ServerName != "m2" {
		t.Errorf("a join preseed takes the token's name: %+v", p.Cluster)
	}

	indent := func(s string) string { return strings.ReplaceAll(strings.TrimSpace(s), "\n", "\n    ") }
	_, err = client.ParsePreseed([]byte("cluster:\n  enabled: true\n  cluster_token: " + tok + "\n  cluster_certificate: |\n    " + indent(cert) + "\n"))
	if err != nil {
		t.Errorf("the token's own certificate: %v", err)
	}

	_, err = client.ParsePreseed([]byte("cluster:\n  enabled: true\n  cluster_token: " + tok + "\n  cluster_certificate: |\n    " + indent(other) + "\n"))
	if err == nil || !strings.Contains(err.Error(), "not the certificate the cluster_token names") {
		t.Errorf("another certificate than the token's: %v", err)
	}
}

// TestParsePreseedRefuses: each bad preseed is refused with one line naming the problem.
func TestParsePreseedRefuses(t *testing.T) {
	tok := joinToken(t, "m2", selfSigned(t))
	join := "cluster:\n  enabled: true\n  cluster_token: " + tok + "\n"
	cases := []struct{ name, yaml, want string }{
		{"unknown top key", "config: {}\nbogus_key: 1\n", `line 2: unknown key "bogus_key" at the top level`},
		{"unknown network key", "networks:\n- name: br1\n  bogus: 2\n", `line 3: unknown key "bogus" in a network`},
		{"storage_volumes (not in LXD 5.0.2)", "storage_volumes:\n- name: v1\n", `unknown key "storage_volumes"`},
		{"profile project (not in LXD 5.0.2)", "profiles:\n- name: p\n  project: x\n", `unknown key "project" in a profile`},
		{"unknown cluster key", "cluster:\n  enable: true\n", `unknown key "enable" in cluster`},
		{"bad syntax", "config:\n  a: b\n c: d\n", "invalid preseed YAML: line"},
		{"list for a map", "networks:\n- name: n\n  config: [a, b]\n", "line 3: a list where a mapping is expected"},
		{"two documents", "config: {}\n---\nconfig: {}\n", "more than one YAML document"},
		{"non-scalar config value", "config:\n  a: [1]\n", `config key "a": the value must be a string`},
		{"nameless network", "networks:\n- type: bridge\n", "a network has no name"},
		{"duplicate profile", "profiles:\n- name: p\n- name: p\n", `profiles lists "p" twice`},
		{"pool without driver", "storage_pools:\n- name: p\n", `storage pool "p" has no driver`},
		{"password join", "cluster:\n  enabled: true\n  cluster_address: 10.0.0.1:8443\n  cluster_password: pw\n", "cluster_password joins are not supported"},
		{"address without token", "cluster:\n  enabled: true\n  cluster_address: 10.0.0.1:8443\n", "joining a cluster needs cluster_token"},
		{"enable without a name", "cluster:\n  enabled: true\n", "needs cluster.server_name"},
		{"bad token", "cluster:\n  enabled: true\n  cluster_token: nope!\n", "cluster_token: not a join token"},
		{"token for another name", join + "  server_name: m3\n", `the cluster_token is for a member named "m2", not "m3"`},
		{"join not enabled", "cluster:\n  cluster_token: " + tok + "\n", "cluster.enabled must be true"},
		{"join with a network", join + "networks:\n- name: br1\n", "cannot have networks"},
		{"join with a global key", "config:\n  core.https_address: 10.0.0.2:8443\n  images.auto_update_interval: 6\n" + join, `not config key "images.auto_update_interval"`},
		{"cert path missing", join + "  cluster_certificate_path: /nonexistent/c.crt\n", "cluster_certificate_path: open /nonexistent/c.crt"},
	}

	for _, c := range cases {
		_, err := client.ParsePreseed([]byte(c.yaml))
		if err == nil {
			t.Errorf("%s: accepted", c.name)
			continue
		}

		if !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: error %q, want one line with %q", c.name, err, c.want)
		}
	}

	many := "networks:\n" + strings.Repeat("- name: n\n", 300)
	_, err := client.ParsePreseed([]byte(strings.ReplaceAll(many, "name: n\n", "name: n\n  type: bridge\n")))
	if err == nil || !strings.Contains(err.Error(), "more than 256") {
		t.Errorf("300 networks: %v", err)
	}

	_, err = client.ReadPreseed(strings.NewReader("config: {}\n" + strings.Repeat("# padding\n", client.MaxPreseedSize/10+1)))
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Errorf("a preseed over the size cap: %v", err)
	}

	// Aliases that expand without bound are refused by the YAML decoder itself.
	bomb := "config:\n  a: &a [x,x,x,x,x,x,x,x,x,x]\n"
	for i, c := range "bcdefghi" {
		prev := string("abcdefghi"[i])
		bomb += fmt.Sprintf("  %c: &%c [%s]\n", c, c, strings.TrimSuffix(strings.Repeat("*"+prev+",", 10), ","))
	}

	_, err = client.ParsePreseed([]byte(bomb))
	if err == nil || !strings.Contains(err.Error(), "excessive aliasing") {
		t.Errorf("an alias bomb: %v", err)
	}
}

// fakeServer is a unix-socket API server for ApplyPreseed: it knows the default profile
// and pool, records every request, and refuses what fail says.
type fakeServer struct {
	mu     sync.Mutex
	log    []string
	config map[string]string
	exists map[string]bool // "/1.0/networks/br1" ...
	fail   func(method, path string) bool
}

func (f *fakeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	body, _ := io.ReadAll(r.Body)
	f.log = append(f.log, r.Method+" "+r.URL.RequestURI())
	write := func(code int, md any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		if code >= 400 {
			_ = json.NewEncoder(w).Encode(map[string]any{"type": "error", "error": "refused by the fake", "error_code": code})
			return
		}

		_ = json.NewEncoder(w).Encode(map[string]any{"type": "sync", "status_code": 200, "metadata": md})
	}

	if f.fail != nil && f.fail(r.Method, r.URL.Path) {
		write(http.StatusBadRequest, nil)
		return
	}

	p := r.URL.Path
	switch {
	case p == "/1.0" && r.Method == http.MethodGet:
		write(200, api.Server{Config: f.config})
	case p == "/1.0" && r.Method == http.MethodPut:
		var req struct{ Config map[string]string }
		_ = json.Unmarshal(body, &req)
		f.config = req.Config
		write(200, nil)
	case r.Method == http.MethodGet:
		if !f.exists[p] {
			write(http.StatusNotFound, nil)
			return
		}

		write(200, map[string]any{"name": filepath.Base(p), "driver": "dir", "config": map[string]string{"k": "old"},
			"devices": map[string]any{"eth0": map[string]string{"type": "nic", "network": "berthbr0"}}})
	case r.Method == http.MethodPost:
		var req struct{ Name string }
		_ = json.Unmarshal(body, &req)
		f.exists[p+"/"+req.Name] = true
		write(200, nil)
	case r.Method == http.MethodDelete:
		delete(f.exists, p)
		write(200, nil)
	default:
		write(200, nil)
	}
}

func startFake(t *testing.T, f *fakeServer) *client.Client {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "unix.socket")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}

	s := httptest.NewUnstartedServer(f)
	s.Listener = l
	s.Start()
	t.Cleanup(s.Close)
	c, err := client.Connect(sock)
	if err != nil {
		t.Fatal(err)
	}

	return c
}

// TestApplyPreseedOrder: LXD 5.0.2's order (probed with its lxd init against a recording
// server): config, pools, default-project networks, projects, other networks, profiles.
// An existing profile is updated (keys merged), the rest created.
func TestApplyPreseedOrder(t *testing.T) {
	f := &fakeServer{config: map[string]string{"core.https_address": "127.0.0.1:1"}, exists: map[string]bool{"/1.0/profiles/default": true}}
	c := startFake(t, f)
	p, err := client.ParsePreseed([]byte(strings.Replace(lxdPreseed, "storage_pools:", "- name: p1net\n  type: bridge\n  project: p1\nstorage_pools:", 1)))
	if err != nil {
		t.Fatal(err)
	}

	err = c.ApplyPreseed(context.Background(), p)
	if err != nil {
		t.Fatal(err)
	}

	want := []string{
		"GET /1.0", "PUT /1.0",
		"GET /1.0/storage-pools/data", "POST /1.0/storage-pools",
		"GET /1.0/networks/lxdbr0", "POST /1.0/networks",
		"GET /1.0/projects/p1", "POST /1.0/projects",
		"GET /1.0/networks/p1net?project=p1", "POST /1.0/networks?project=p1",
		"GET /1.0/profiles/default", "PUT /1.0/profiles/default",
	}

	if strings.Join(f.log, "\n") != strings.Join(want, "\n") {
		t.Errorf("requests:\n%s\nwant:\n%s", strings.Join(f.log, "\n"), strings.Join(want, "\n"))
	}

	if f.config["images.auto_update_interval"] != "15" || f.config["core.https_address"] != "192.168.1.1:9999" {
		t.Errorf("server config %v", f.config)
	}
}

// TestApplyPreseedRollback: a profile the server refuses after a network and a pool
// were created and the config changed: the network and pool are deleted and the config
// put back, last first, and the error says so.
func TestApplyPreseedRollback(t *testing.T) {
	f := &fakeServer{config: map[string]string{"core.https_address": "127.0.0.1:1"}, exists: map[string]bool{},
		fail: func(m, p string) bool { return m == http.MethodPost && p == "/1.0/profiles" }}
	c := startFake(t, f)
	p, err := client.ParsePreseed([]byte(strings.Replace(lxdPreseed, "projects:\n- name: p1\n  description: a project\n", "", 1)))
	if err != nil {
		t.Fatal(err)
	}

	err = c.ApplyPreseed(context.Background(), p)
	if err == nil || !strings.Contains(err.Error(), `creating profile "default"`) || !strings.Contains(err.Error(), "all 3 changes rolled back") {
		t.Fatalf("error %v", err)
	}

	tail := f.log[len(f.log)-3:]
	want := []string{"DELETE /1.0/networks/lxdbr0", "DELETE /1.0/storage-pools/data", "PUT /1.0"}
	if strings.Join(tail, ",") != strings.Join(want, ",") {
		t.Errorf("undo requests %v, want %v", tail, want)
	}

	if len(f.exists) != 0 || len(f.config) != 1 || f.config["core.https_address"] != "127.0.0.1:1" {
		t.Errorf("left behind: %v %v", f.exists, f.config)
	}

	// An undo that fails is named.
	f.fail = func(m, p string) bool {
		return (m == http.MethodPost && p == "/1.0/profiles") || (m == http.MethodDelete && p == "/1.0/networks/lxdbr0")
	}

	err = c.ApplyPreseed(context.Background(), p)
	if err == nil || !strings.Contains(err.Error(), `rolled back 2 of 3 changes; could not delete network "lxdbr0"`) {
		t.Errorf("error %v", err)
	}
}
