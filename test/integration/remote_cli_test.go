package integration

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/berth-dev/berth/client"
)

// remoteServer is what the remote CLI test needs from a server: its HTTPS address, a
// way to make join tokens, and a way to make an instance with the server's own trusted
// client: Debian's real LXD 5.0.2 (TestRemoteCLIAgainstLXD) and berthd
// (TestRemoteCLIAgainstBerthd).
type remoteServer struct {
	url         string
	token       func(t *testing.T, clientName string) string
	createEmpty func(t *testing.T, name string)
}

// TestRemoteCLIAgainstLXD runs `berth remote add` and the REMOTE:NAME commands against
// Debian's real LXD 5.0.2 over HTTPS.
func TestRemoteCLIAgainstLXD(t *testing.T) {
	parallel(t)
	l := startPrivateLXD(t)
	testRemoteCLI(t, remoteServer{url: l.url(), token: l.token, createEmpty: l.createEmpty})
}

// berthConf runs the CLI with its own client configuration directory and no local
// daemon: everything it does goes to the remote.
type berthConf struct {
	dir string
	env []string // more environment: BERTH_DIR of a local daemon
}

func newBerthConf(t *testing.T) berthConf {
	return berthConf{dir: filepath.Join(t.TempDir(), "conf")}
}

// ownEnv is what the CLI's environment adds to the test's: this configuration
// directory, and BERTH_DIR pointing at no daemon unless env says otherwise.
func (b berthConf) ownEnv() []string {
	return append([]string{"BERTH_CONF=" + b.dir, "BERTH_DIR=" + filepath.Join(b.dir, "no-daemon")}, b.env...)
}

func (b berthConf) environ() []string { return append(os.Environ(), b.ownEnv()...) }

// startOnPty runs the CLI on a new 24x80 pty.
func (b berthConf) startOnPty(t *testing.T, args ...string) *cliSession {
	t.Helper()
	return startOnPtyEnv(t, b.ownEnv(), args...)
}

// run returns stdout, stderr and the exit code.
func (b berthConf) run(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()

	cmd := exec.Command(berthBin, args...)
	cmd.Env = b.environ()
	cmd.Stdin = strings.NewReader(stdin)

	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut

	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		if !ok {
			t.Fatalf("berth %s: %v", strings.Join(args, " "), err)
		}

		code = ee.ExitCode()
	}

	return out.String(), errOut.String(), code
}

// ok runs the CLI and fails the test on a non-zero exit.
func (b berthConf) ok(t *testing.T, args ...string) string {
	t.Helper()

	out, errOut, code := b.run(t, "", args...)
	if code != 0 {
		t.Fatalf("berth %s: exit %d\n%s%s", strings.Join(args, " "), code, out, errOut)
	}

	return out
}

// generating is the notice printed when the client certificate is made.
const generating = "Generating a client certificate. This may take a minute..."

// fails runs the CLI, expects a failure reported as one "Error: " line containing want
// (case aside), after at most the certificate generation notice.
func (b berthConf) fails(t *testing.T, stdin, want string, args ...string) {
	t.Helper()

	out, errOut, code := b.run(t, stdin, args...)
	lines := strings.Split(strings.TrimRight(errOut, "\n"), "\n")
	if len(lines) > 1 && lines[0] == generating {
		lines = lines[1:]
	}

	if code == 0 || len(lines) != 1 || !strings.HasPrefix(lines[0], "Error: ") || !strings.Contains(strings.ToLower(lines[0]), strings.ToLower(want)) {
		t.Errorf("berth %s: exit %d, want a failure with one error line containing %q\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, want, out, errOut)
	}
}

func (b berthConf) remoteNames(t *testing.T) string {
	t.Helper()
	return b.ok(t, "remote", "list", "-f", "csv")
}

func testRemoteCLI(t *testing.T, srv remoteServer) {
	b := newBerthConf(t)

	// Untrusted, no token: refused in one readable line, nothing saved.
	b.fails(t, "", "doesn't trust this client", "remote", "add", "U", srv.url, "--accept-certificate")
	if strings.Contains(b.remoteNames(t), "U,") {
		t.Error("a refused remote was saved")
	}

	if _, err := os.Stat(filepath.Join(b.dir, "servercerts", "U.crt")); !os.IsNotExist(err) {
		t.Errorf("a refused remote's certificate was kept: %v", err)
	}

	// First contact without --accept-certificate: the fingerprint is shown, "n" refuses.
	out, _, code := b.run(t, "n\n", "remote", "add", "U", srv.url)
	if code == 0 || !strings.Contains(out, "Certificate fingerprint: ") {
		t.Errorf("refusing the fingerprint: exit %d, stdout %q", code, out)
	}

	// A token: added and trusted.
	token := srv.token(t, "berth-it")
	decoded, err := client.DecodeToken(token)
	if err != nil {
		t.Fatalf("the server's token: %v", err)
	}

	out = b.ok(t, "remote", "add", "R", token)
	if !strings.Contains(out, "Client certificate now trusted by server: R") {
		t.Errorf("remote add: %q", out)
	}

	// The files, shaped like lxc's.
	pinned, err := os.ReadFile(filepath.Join(b.dir, "servercerts", "R.crt"))
	if err != nil {
		t.Fatal(err)
	}

	cert, err := client.ParseCertificate(pinned)
	if err != nil || client.Fingerprint(cert) != decoded.Fingerprint {
		t.Errorf("pinned certificate is not the token's: %v", err)
	}

	fi, err := os.Stat(filepath.Join(b.dir, "client.key"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("client.key: %v, mode %v", err, fi.Mode())
	}

	conf, _ := os.ReadFile(filepath.Join(b.dir, "config.yml"))
	if !strings.Contains(string(conf), "  R:\n    addr: "+srv.url+"\n    protocol: lxd\n    public: false\n") || !strings.Contains(string(conf), "default-remote: local\n") {
		t.Errorf("config.yml:\n%s", conf)
	}

	if list := b.remoteNames(t); !strings.Contains(list, "R,"+srv.url+",lxd,tls,NO,NO,NO\n") {
		t.Errorf("remote list:\n%s", list)
	}

	// Trusted now.
	out = b.ok(t, "list", "R:")
	if !strings.Contains(out, "NAME") || !strings.Contains(out, "STATE") {
		t.Errorf("list R::\n%s", out)
	}

	clientPEM, err := os.ReadFile(filepath.Join(b.dir, "client.crt"))
	if err != nil {
		t.Fatal(err)
	}

	ours, err := client.ParseCertificate(clientPEM)
	if err != nil {
		t.Fatal(err)
	}

	fp := client.Fingerprint(ours)
	out = b.ok(t, "config", "trust", "list", "R:", "-f", "csv")
	if !strings.Contains(out, "client,berth-it,"+ours.Subject.CommonName+","+fp[:12]+",") {
		t.Errorf("trust list lacks our certificate %s:\n%s", fp[:12], out)
	}

	// The token was single use: another client cannot redeem it.
	other := newBerthConf(t)
	other.fails(t, "", "", "remote", "add", "R", token)
	if strings.Contains(other.remoteNames(t), "R,") {
		t.Error("a reused token added a remote")
	}

	// Operations over TLS: their waits use the events websocket (wss://).
	srv.createEmpty(t, "c1")
	b.ok(t, "config", "set", "R:c1", "user.remote=yes")
	if v := strings.TrimSpace(b.ok(t, "config", "get", "R:c1", "user.remote")); v != "yes" {
		t.Errorf("config get R:c1 user.remote = %q", v)
	}

	if out := b.ok(t, "list", "R:", "-f", "csv", "-c", "n"); strings.TrimSpace(out) != "c1" {
		t.Errorf("list R: = %q", out)
	}

	b.ok(t, "delete", "R:c1")
	if out := b.ok(t, "list", "R:", "-f", "csv", "-c", "n"); strings.TrimSpace(out) != "" {
		t.Errorf("after delete R:c1, list R: = %q", out)
	}

	// Tokens made and revoked from this client.
	b.ok(t, "config", "trust", "add", "R:", "later")
	if out := b.ok(t, "config", "trust", "list-tokens", "R:", "-f", "csv"); !strings.Contains(out, "later,") {
		t.Errorf("list-tokens lacks the new token:\n%s", out)
	}

	b.ok(t, "config", "trust", "revoke-token", "R:", "later")
	if out := b.ok(t, "config", "trust", "list-tokens", "R:", "-f", "csv"); strings.Contains(out, "later,") {
		t.Errorf("a revoked token is still listed:\n%s", out)
	}

	// Remote bookkeeping.
	b.ok(t, "remote", "rename", "R", "S")
	b.ok(t, "remote", "switch", "S")
	if d := strings.TrimSpace(b.ok(t, "remote", "get-default")); d != "S" {
		t.Errorf("default remote %q, want S", d)
	}

	b.ok(t, "list") // the default remote is S now
	b.fails(t, "", "can't remove the default remote", "remote", "remove", "S")
	b.fails(t, "", "static", "remote", "remove", "local")

	// Removing our own certificate cuts us off, after the answer (the request's own
	// connection outlives the cut).
	b.ok(t, "config", "trust", "remove", "S:"+fp)
	b.fails(t, "", "not authorized", "list", "S:")

	b.ok(t, "remote", "switch", "local")
	b.ok(t, "remote", "remove", "S")
	if _, err := os.Stat(filepath.Join(b.dir, "servercerts", "S.crt")); !os.IsNotExist(err) {
		t.Errorf("a removed remote's certificate was kept: %v", err)
	}
}
