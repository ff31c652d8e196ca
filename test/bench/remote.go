package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// remoteRuns is how many samples each remote figure takes.
const remoteRuns = 20

// benchRemote measures the API over HTTPS against the same over the unix socket: `lxc
// list` and `lxc exec NAME -- true` with Debian's lxc as a remote client of berthd (one
// running instance), the same with the berth CLI, and the same with lxc against a private
// LXD's own HTTPS listener on this machine. Failures become notes.
func benchRemote(b *berthd, image string, r *report) {
	quietBerth(b)
	err := remoteBerthd(b, r)
	if err != nil {
		r.note("remote: berthd figures stopped early: %v", err)
	}

	remoteLXD(image, r)
	r.note("remote: one running instance on each daemon; TLS figures include the client's handshake (ECDSA P-384, TLS 1.3) on every command")
}

// remoteBerthd times lxc and berth against berthd over its unix socket and over
// core.https_address on a loopback port.
func remoteBerthd(b *berthd, r *report) error {
	const name = "rc"

	tmp, err := os.MkdirTemp("", "bench-remote-")
	if err != nil {
		return err
	}

	defer func() { _ = os.RemoveAll(tmp) }()

	addr, err := freeLoopbackAddr()
	if err != nil {
		return err
	}

	_, err = b.berth("config", "set", "core.https_address", addr)
	if err != nil {
		return err
	}

	defer func() { _, _ = b.berth("config", "unset", "core.https_address") }()

	_, err = b.berth("launch", "debian/12", name)
	if err != nil {
		return err
	}

	defer func() { _, _ = b.berth("delete", "-f", name) }()

	_, err = b.waitInstance(name)
	if err != nil {
		return err
	}

	lxc, lerr := exec.LookPath("lxc")
	berth := absBin(b.bin, "berth")
	unixBerth := clientEnv(tmp, "berth-unix", "BERTH_DIR="+b.dir)
	tlsBerth := clientEnv(tmp, "berth-tls", "BERTH_DIR="+filepath.Join(tmp, "none"))
	err = addRemote(berth, tlsBerth, "R", func() (string, error) { return b.berth("config", "trust", "add", "bench-berth", "-q") })
	if err != nil {
		return err
	}

	probes := []probe{
		{figure: "remote: berth list (unix socket)", bin: berth, args: []string{"list"}, env: unixBerth},
		{figure: "remote: berth list R: (TLS)", bin: berth, args: []string{"list", "R:"}, env: tlsBerth},
		{figure: "remote: berth exec NAME -- true (unix socket)", bin: berth, args: []string{"exec", name, "--", "true"}, env: unixBerth},
		{figure: "remote: berth exec R:NAME -- true (TLS)", bin: berth, args: []string{"exec", "R:" + name, "--", "true"}, env: tlsBerth},
	}

	if lerr != nil {
		r.note("remote: lxc not installed: its figures against berthd skipped")
	} else {
		unixLXC := clientEnv(tmp, "lxc-unix", "LXD_DIR="+b.dir)
		tlsLXC := clientEnv(tmp, "lxc-tls", "LXD_DIR="+filepath.Join(tmp, "none"))
		err = addRemote(lxc, tlsLXC, "R", func() (string, error) { return b.berth("config", "trust", "add", "bench-lxc", "-q") })
		if err != nil {
			return err
		}

		probes = append([]probe{
			{figure: "remote: lxc list (unix socket)", bin: lxc, args: []string{"list"}, env: unixLXC},
			{figure: "remote: lxc list R: (TLS)", bin: lxc, args: []string{"list", "R:"}, env: tlsLXC},
			{figure: "remote: lxc exec NAME -- true (unix socket)", bin: lxc, args: []string{"exec", name, "--", "true"}, env: unixLXC},
			{figure: "remote: lxc exec R:NAME -- true (TLS)", bin: lxc, args: []string{"exec", "R:" + name, "--", "true"}, env: tlsLXC},
		}, probes...)
	}

	return interleave(context.Background(), r, probes)
}

// remoteLXD times lxc (and berth) against a private LXD over its unix socket and over
// its own HTTPS listener on a loopback port.
func remoteLXD(image string, r *report) {
	_, err := exec.LookPath("lxd")
	if err != nil {
		r.note("remote: LXD not installed: its figures skipped (apt-get install lxd)")
		return
	}

	ctx, cancel := context.WithTimeout(context.Background(), lxdBudget)
	defer cancel()

	fmt.Fprintf(os.Stderr, "remote: starting a private LXD (%s pool, no network)\n", lxdPool)
	l, err := startLXD(ctx, image)
	if err != nil {
		r.note("remote: LXD figures skipped: %v", err)
		return
	}

	defer func() {
		for _, p := range l.close() {
			r.note("remote: LXD cleanup: %s", p)
		}
	}()

	err = measureRemoteLXD(ctx, l, r)
	if err != nil {
		r.note("remote: LXD figures stopped early: %v", err)
	}
}

func measureRemoteLXD(ctx context.Context, l *lxdDaemon, r *report) error {
	tmp, err := os.MkdirTemp("", "bench-remote-lxd-")
	if err != nil {
		return err
	}

	defer func() { _ = os.RemoveAll(tmp) }()

	addr, err := freeLoopbackAddr()
	if err != nil {
		return err
	}

	_, err = l.lxc(ctx, "config", "set", "core.https_address", addr)
	if err != nil {
		return err
	}

	name := l.prefix + "r"
	err = l.start(ctx, "launch", "debian12", name)
	if err != nil {
		return err
	}

	err = l.waitRunning(ctx, name)
	if err != nil {
		return err
	}

	token := func(client string) func() (string, error) {
		return func() (string, error) { return l.lxc(ctx, "config", "trust", "add", "--name", client, "-q") }
	}

	lxc, _ := exec.LookPath("lxc") // there with lxd: the same package set
	unixLXC := []string{"LXD_DIR=" + l.lxdDir(), "LXD_CONF=" + filepath.Join(l.dir, "c")}
	tlsLXC := clientEnv(tmp, "lxc-tls", "LXD_DIR="+filepath.Join(tmp, "none"))
	err = addRemote(lxc, tlsLXC, "L", token("bench-lxc"))
	if err != nil {
		return err
	}

	probes := []probe{
		{figure: "remote: LXD, lxc list (unix socket)", bin: lxc, args: []string{"list"}, env: unixLXC},
		{figure: "remote: LXD, lxc list L: (TLS)", bin: lxc, args: []string{"list", "L:"}, env: tlsLXC},
		{figure: "remote: LXD, lxc exec NAME -- true (unix socket)", bin: lxc, args: []string{"exec", name, "--", "true"}, env: unixLXC},
		{figure: "remote: LXD, lxc exec L:NAME -- true (TLS)", bin: lxc, args: []string{"exec", "L:" + name, "--", "true"}, env: tlsLXC},
	}

	berth := absBin(*binDir, "berth")
	tlsBerth := clientEnv(tmp, "berth-tls", "BERTH_DIR="+filepath.Join(tmp, "none"))
	err = addRemote(berth, tlsBerth, "L", token("bench-berth"))
	if err != nil {
		r.note("remote: berth as a client of LXD: %v", err)
	} else {
		probes = append(probes,
			probe{figure: "remote: LXD, berth list L: (TLS)", bin: berth, args: []string{"list", "L:"}, env: tlsBerth},
			probe{figure: "remote: LXD, berth exec L:NAME -- true (TLS)", bin: berth, args: []string{"exec", "L:" + name, "--", "true"}, env: tlsBerth})
	}

	return interleave(ctx, r, probes)
}

// clientEnv is the environment of a client with its own configuration directory
// (HOME, LXD_CONF and BERTH_CONF all in dir/sub), plus more.
func clientEnv(dir, sub string, more ...string) []string {
	conf := filepath.Join(dir, sub)
	return append([]string{"HOME=" + conf, "LXD_CONF=" + filepath.Join(conf, "lxc"), "BERTH_CONF=" + filepath.Join(conf, "berth")}, more...)
}

// addRemote has a client (lxc or berth: the same command line) add remote name with a
// token that issue makes on the server side.
func addRemote(bin string, env []string, name string, issue func() (string, error)) error {
	out, err := issue()
	if err != nil {
		return err
	}

	f := strings.Fields(out)
	if len(f) == 0 {
		return fmt.Errorf("no token issued")
	}

	cmd := exec.Command(bin, "remote", "add", name, f[len(f)-1])
	cmd.Env = append(os.Environ(), env...)
	got, err := cmd.CombinedOutput()
	if err != nil {
		return fmt.Errorf("%s remote add %s: %w: %s", filepath.Base(bin), name, err, trim(string(got)))
	}

	return nil
}

// probe is one timed command.
type probe struct {
	figure string
	bin    string
	args   []string
	env    []string
	err    error
}

// interleave runs each probe once untimed (first contacts, exec servers, caches), then
// remoteRuns rounds of one run of each: load drifting on a shared machine hits every
// figure alike. A probe that fails is dropped with a note; the others go on.
func interleave(ctx context.Context, r *report, probes []probe) error {
	for round := -1; round < remoteRuns; round++ {
		for i := range probes {
			p := &probes[i]
			if p.err != nil {
				continue
			}

			cmd := exec.CommandContext(ctx, p.bin, p.args...)
			cmd.Env = append(os.Environ(), p.env...)
			t0 := time.Now()
			out, err := cmd.CombinedOutput()
			took := time.Since(t0)
			if err != nil {
				p.err = fmt.Errorf("%s %s: %w: %s", filepath.Base(p.bin), strings.Join(p.args, " "), err, trim(string(out)))
				r.note("%s: %v", p.figure, p.err)
				continue
			}

			if round >= 0 {
				r.add(p.figure, took)
			}
		}

		if ctx.Err() != nil {
			return ctx.Err()
		}
	}

	return nil
}

// freeLoopbackAddr returns 127.0.0.1:PORT with a port free a moment ago.
func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}

	addr := ln.Addr().String()
	return addr, ln.Close()
}
