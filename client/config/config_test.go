package config

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/x509"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/client"
)

func TestLoadMissingIsDefault(t *testing.T) {
	c, err := Load(filepath.Join(t.TempDir(), "none"))
	if err != nil {
		t.Fatal(err)
	}

	if c.DefaultRemote != Local || c.Remotes[Local].Addr != LocalAddr || len(c.Remotes) != 1 {
		t.Fatalf("default config = %+v", c)
	}
}

// An lxc config.yml (as lxc 5.0.2 wrote it on this machine) loads as is.
func TestLoadLXCFile(t *testing.T) {
	dir := t.TempDir()
	lxc := `default-remote: local
remotes:
  R:
    addr: https://127.0.0.1:18443
    project: default
    protocol: lxd
    public: false
  images:
    addr: https://images.linuxcontainers.org
    protocol: simplestreams
    public: true
  local:
    addr: unix://
    public: false
aliases: {}
`
	err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(lxc), 0o644)
	if err != nil {
		t.Fatal(err)
	}

	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}

	r := c.Remotes["R"]
	if r.Addr != "https://127.0.0.1:18443" || r.Protocol != "lxd" || r.Project != "default" || r.Public {
		t.Errorf("R = %+v", r)
	}

	if !c.Remotes["images"].Public || c.Remotes["images"].Protocol != "simplestreams" {
		t.Errorf("images = %+v", c.Remotes["images"])
	}

	_, err = c.Connect("images")
	if err == nil || !strings.Contains(err.Error(), "image server") {
		t.Errorf("connecting to a simplestreams remote: %v", err)
	}
}

func TestSaveLoadRoundTrip(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "conf")
	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}

	c.Remotes["web"] = Remote{Addr: "https://192.0.2.1:8443", Protocol: ProtocolLXD}
	c.DefaultRemote = "web"

	err = c.Save()
	if err != nil {
		t.Fatal(err)
	}

	fi, err := os.Stat(filepath.Join(dir, "config.yml"))
	if err != nil {
		t.Fatal(err)
	}

	if fi.Mode().Perm() != 0o600 {
		t.Errorf("config.yml mode %04o, want 0600", fi.Mode().Perm())
	}

	data, _ := os.ReadFile(filepath.Join(dir, "config.yml"))
	for _, want := range []string{"default-remote: web\n", "remotes:\n  local:\n    addr: unix://\n", "  web:\n    addr: https://192.0.2.1:8443\n    protocol: lxd\n    public: false\n"} {
		if !strings.Contains(string(data), want) {
			t.Errorf("config.yml lacks %q:\n%s", want, data)
		}
	}

	again, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}

	if again.DefaultRemote != "web" || again.Remotes["web"] != c.Remotes["web"] || again.Remotes[Local] != c.Remotes[Local] {
		t.Errorf("round trip: %+v", again)
	}
}

func TestLoadRefuses(t *testing.T) {
	cases := map[string]string{
		"bad yaml":    "remotes: [",
		"bad name":    "remotes:\n  a/b:\n    addr: https://x\n",
		"colon name":  "remotes:\n  'a:b':\n    addr: https://x\n",
		"huge":        "# " + strings.Repeat("x", maxConfigSize) + "\n",
		"dotdot name": "remotes:\n  '..':\n    addr: https://x\n",
	}

	for name, text := range cases {
		dir := t.TempDir()
		err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte(text), 0o600)
		if err != nil {
			t.Fatal(err)
		}

		_, err = Load(dir)
		if err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}

// The local remote cannot be lost or pointed at HTTPS by an edited file.
func TestLoadKeepsLocal(t *testing.T) {
	dir := t.TempDir()
	err := os.WriteFile(filepath.Join(dir, "config.yml"), []byte("remotes:\n  local:\n    addr: https://evil:8443\n"), 0o600)
	if err != nil {
		t.Fatal(err)
	}

	c, err := Load(dir)
	if err != nil {
		t.Fatal(err)
	}

	if c.Remotes[Local].Addr != LocalAddr || c.DefaultRemote != Local {
		t.Errorf("local = %+v, default %q", c.Remotes[Local], c.DefaultRemote)
	}
}

func TestParseRemote(t *testing.T) {
	c := &Config{DefaultRemote: "local", Remotes: map[string]Remote{"local": {Addr: LocalAddr}, "R": {Addr: "https://h:8443"}}}
	cases := []struct{ arg, remote, name, err string }{
		{"c1", "local", "c1", ""},
		{"R:c1", "R", "c1", ""},
		{"R:", "R", "", ""},
		{"local:c1", "local", "c1", ""},
		{"R:c1/etc/hosts", "R", "c1/etc/hosts", ""},
		{"c1/snap:1", "local", "c1/snap:1", ""},   // a colon after a slash is not a remote
		{"c1/etc/a:b", "local", "c1/etc/a:b", ""}, // nor in a path
		{"R:c1:x", "R", "c1:x", ""},
		{"", "local", "", ""},
		{"nope:c1", "", "", `the remote "nope" doesn't exist`},
	}

	for _, tc := range cases {
		r, n, err := c.ParseRemote(tc.arg)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%q: error %v, want %q", tc.arg, err, tc.err)
			}

			continue
		}

		if err != nil || r != tc.remote || n != tc.name {
			t.Errorf("%q = %q, %q, %v; want %q, %q", tc.arg, r, n, err, tc.remote, tc.name)
		}
	}
}

func TestValidateName(t *testing.T) {
	for _, ok := range []string{"R", "my-server", "web.example.com", "s_1"} {
		if err := ValidateName(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}

	for _, bad := range []string{"", "a:b", "a/b", "..", ".", "-x", "a b", "a\nb", "a\\b", strings.Repeat("x", maxNameLen+1)} {
		if err := ValidateName(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestClientCertificate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "conf")
	c := &Config{Dir: dir}
	generated := 0
	c.OnGenerate = func() { generated++ }

	certPEM, keyPEM, err := c.ClientCertificate()
	if err != nil {
		t.Fatal(err)
	}

	cert, err := client.ParseCertificate(certPEM)
	if err != nil {
		t.Fatal(err)
	}

	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P384() {
		t.Errorf("key is %T, want ECDSA P-384", cert.PublicKey)
	}

	if len(cert.ExtKeyUsage) != 1 || cert.ExtKeyUsage[0] != x509.ExtKeyUsageClientAuth {
		t.Errorf("extended key usage %v, want client auth", cert.ExtKeyUsage)
	}

	if !strings.Contains(string(keyPEM), "EC PRIVATE KEY") {
		t.Errorf("key is not an EC PRIVATE KEY PEM")
	}

	for path, want := range map[string]os.FileMode{c.ClientKeyPath(): 0o600, c.ClientCertPath(): 0o644, dir: 0o700} {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}

		if fi.Mode().Perm() != want {
			t.Errorf("%s mode %04o, want %04o", path, fi.Mode().Perm(), want)
		}
	}

	again, _, err := c.ClientCertificate()
	if err != nil || string(again) != string(certPEM) || generated != 1 {
		t.Errorf("second call: generated %d times, same cert %v, err %v", generated, string(again) == string(certPEM), err)
	}

	// A key others can read is refused, not used.
	err = os.Chmod(c.ClientKeyPath(), 0o644)
	if err != nil {
		t.Fatal(err)
	}

	_, _, err = c.ClientCertificate()
	if err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("loose key: %v", err)
	}
}

// The local remote is the unix socket of --socket (or the default one).
func TestConnectLocal(t *testing.T) {
	c := &Config{DefaultRemote: Local, Remotes: map[string]Remote{Local: {Addr: LocalAddr}}, Socket: filepath.Join(t.TempDir(), "none.socket")}
	_, err := c.Connect(Local)
	if err == nil || !strings.Contains(err.Error(), "none.socket") {
		t.Errorf("connecting to a missing socket: %v", err)
	}

	_, err = c.Connect("other")
	if err == nil || err.Error() != `the remote "other" doesn't exist` {
		t.Errorf("unknown remote: %v", err)
	}
}
