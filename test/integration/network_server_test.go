package integration

import (
	"bytes"
	"crypto/md5"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/test/testutil"
)

// helloMain is the service the test package ships: a static binary answering one line on
// TCP 8080, built here so the container needs nothing it does not have.
const helloMain = `package main

import (
	"fmt"
	"net"
	"os"
)

func main() {
	l, err := net.Listen("tcp", ":8080")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}

	for {
		c, err := l.Accept()
		if err != nil {
			continue
		}

		fmt.Fprintf(c, "hello from berth uid=%d\n", os.Getuid())
		c.Close()
	}
}
`

const helloUnit = `[Unit]
Description=Berth test service

[Service]
ExecStart=/usr/bin/berth-hello
DynamicUser=yes

[Install]
WantedBy=multi-user.target
`

// buildHelloDeb builds berth-hello_1.0_amd64.deb into repo, with Packages and Release files
// next to it: a flat apt repository.
func buildHelloDeb(t *testing.T, repo string) {
	t.Helper()
	src := t.TempDir()
	root := t.TempDir()
	for path, content := range map[string]string{
		filepath.Join(src, "go.mod"):  "module hello\n\ngo 1.22\n",
		filepath.Join(src, "main.go"): helloMain,
		filepath.Join(root, "DEBIAN", "control"): "Package: berth-hello\nVersion: 1.0\nArchitecture: amd64\n" +
			"Maintainer: Berth tests <tests@berth.invalid>\nDescription: answers on TCP 8080\n",
		filepath.Join(root, "lib", "systemd", "system", "berth-hello.service"): helloUnit,
	} {
		err := os.MkdirAll(filepath.Dir(path), 0o755)
		if err == nil {
			err = os.WriteFile(path, []byte(content), 0o644)
		}

		if err != nil {
			t.Fatal(err)
		}
	}

	_ = os.MkdirAll(filepath.Join(root, "usr", "bin"), 0o755)
	build := exec.Command("go", "build", "-o", filepath.Join(root, "usr", "bin", "berth-hello"), ".")
	build.Dir = src
	build.Env = append(os.Environ(), "CGO_ENABLED=0", "GOFLAGS=-mod=mod", "GOWORK=off")
	out, err := build.CombinedOutput()
	if err != nil {
		t.Fatalf("building the service: %v\n%s", err, out)
	}

	deb := filepath.Join(repo, "berth-hello_1.0_amd64.deb")
	out, err = exec.Command("dpkg-deb", "--root-owner-group", "--build", root, deb).CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg-deb: %v\n%s", err, out)
	}

	data, err := os.ReadFile(deb)
	if err != nil {
		t.Fatal(err)
	}

	control, _ := os.ReadFile(filepath.Join(root, "DEBIAN", "control"))
	packages := fmt.Sprintf("%sFilename: ./%s\nSize: %d\nMD5sum: %x\nSHA256: %x\n\n",
		control, filepath.Base(deb), len(data), md5.Sum(data), sha256.Sum256(data))
	release := fmt.Sprintf("Origin: berth-test\nLabel: berth-test\nSuite: stable\nCodename: berth\nDate: %s\nArchitectures: amd64\nSHA256:\n %x %d Packages\n",
		time.Now().UTC().Add(-time.Hour).Format(time.RFC1123), sha256.Sum256([]byte(packages)), len(packages))
	for name, content := range map[string]string{"Packages": packages, "Release": release} {
		err := os.WriteFile(filepath.Join(repo, name), []byte(content), 0o644)
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestNetworkServer: the container works like a server. apt installs a package from a
// repository served on the bridge's host address, a new user runs sudo -n after being
// granted it, systemctl enable --now starts the packaged service, and the host reaches it
// on the container's address.
func TestNetworkServer(t *testing.T) {
	parallel(t)
	requireSetup(t)
	testutil.LookPath(t, "dpkg-deb", "Debian package dpkg")

	d := startNetDaemon(t)
	repo := t.TempDir()
	buildHelloDeb(t, repo)

	gw, _, _ := net.ParseCIDR(d.defaultNetwork().Config["ipv4.address"])
	l, err := net.Listen("tcp", net.JoinHostPort(gw.String(), "0"))
	if err != nil {
		t.Fatal(err)
	}

	srv := &http.Server{Handler: http.FileServer(http.Dir(repo)), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(l) }()
	t.Cleanup(func() { _ = srv.Close() })

	d.berth("launch", "debian/12", "srv")
	if st := d.waitRunning("srv"); st != "running" {
		t.Fatalf("systemd says %q", st)
	}

	addr := d.waitIPv4("srv", 3*time.Second)

	// Only the test repository: nothing may depend on the outside.
	sources := fmt.Sprintf("deb [trusted=yes] http://%s/ ./\n", l.Addr())
	d.mustInside("srv", "sh", "-c", "mkdir -p /root/apt-sources && mv /etc/apt/sources.list /etc/apt/sources.list.d/* /root/apt-sources/ 2>/dev/null; "+
		"printf '%s' '"+sources+"' > /etc/apt/sources.list.d/test.list")
	d.mustInside("srv", "apt-get", "update")
	d.mustInside("srv", "env", "DEBIAN_FRONTEND=noninteractive", "apt-get", "install", "-y", "berth-hello")

	// sudo: refused before the grant, root after.
	d.mustInside("srv", "useradd", "-m", "-s", "/bin/bash", "alice")
	out, err := d.inside("srv", "runuser", "-u", "alice", "--", "sudo", "-n", "id", "-u")
	if err == nil {
		t.Fatalf("sudo -n worked before the grant: %s", out)
	}

	d.mustInside("srv", "sh", "-c", "echo 'alice ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/alice && chmod 0440 /etc/sudoers.d/alice")
	out = d.mustInside("srv", "runuser", "-u", "alice", "--", "sudo", "-n", "id", "-u")
	if strings.TrimSpace(out) != "0" {
		t.Fatalf("sudo -n id -u as alice: %q", out)
	}

	d.mustInside("srv", "systemctl", "enable", "--now", "berth-hello.service")
	deadline := time.Now().Add(10 * time.Second)
	for {
		line, err := dialRead(net.JoinHostPort(addr, "8080"))
		if err == nil && strings.HasPrefix(line, "hello from berth") {
			break
		}

		if time.Now().After(deadline) {
			st, _ := d.inside("srv", "systemctl", "status", "berth-hello.service")
			t.Fatalf("host reaching %s:8080: %q %v\n%s", addr, line, err, st)
		}

		time.Sleep(50 * time.Millisecond)
	}

	enabled := d.mustInside("srv", "systemctl", "is-enabled", "berth-hello.service")
	if strings.TrimSpace(enabled) != "enabled" {
		t.Fatalf("is-enabled: %q", enabled)
	}
}

func dialRead(addr string) (string, error) {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}

	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	var b bytes.Buffer
	_, err = io.Copy(&b, c)
	return b.String(), err
}
