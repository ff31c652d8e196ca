package integration

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/berth-dev/berth/test/testutil"
)

// Issue 15, item 4: containers between a real LXD 5.0.2 and Berth, both ways, the stock
// lxc driving both as it would for two LXD servers. LXD→Berth: a stopped container made
// in LXD from the test image (a file owned by 1000:1001, two snapshots, a user key)
// arrives with its files, owners, snapshots and config and boots under Berth.
// Berth→LXD: LXD accepts a stopped Berth container with its snapshots, records its tree
// as unshifted, and keeps the container's owners on disk.

const (
	lxdMigBigSize = 64 << 20
	lxdMigSums    = "sha256sum /root/big; stat -c '%u:%g %a %n' /home/u/owned"
)

// lxdMigPayload writes a random file of size bytes under dir and returns its path and
// sha256sum line as printed inside the container for /root/big.
func lxdMigPayload(t *testing.T, size int) (string, string) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "big")
	buf := make([]byte, size)
	_, _ = rand.Read(buf)
	if err := os.WriteFile(p, buf, 0o644); err != nil {
		t.Fatal(err)
	}

	sum := sha256.Sum256(buf)
	return p, hex.EncodeToString(sum[:]) + "  /root/big\n"
}

// lxdSnapshots is the snapshot names of an LXD instance, comma-separated.
func (l *lxdPeer) snapshots(name string) string {
	l.t.Helper()
	out := l.must("query", "/1.0/instances/"+name+"/snapshots")
	names := []string{}
	for _, f := range strings.Split(out, "\"") {
		if i := strings.LastIndex(f, "/snapshots/"); i >= 0 {
			names = append(names, f[i+len("/snapshots/"):])
		}
	}

	return strings.Join(names, ",")
}

func TestMigrateLXD(t *testing.T) {
	parallel(t)
	requireSetup(t)
	b := startDaemon(t)
	b.listenHTTPS()
	l := startLXDPeer(t)
	l.importTestImage("debian12")

	lxc := newLXC(t, "")
	lxc.must("remote", "add", "B", b.trustToken("cli"))
	lxc.must("remote", "add", "L", l.token(t, "cli"))

	big, bigSum := lxdMigPayload(t, lxdMigBigSize)
	small := filepath.Join(t.TempDir(), "owned")
	if err := os.WriteFile(small, []byte("owned\n"), 0o640); err != nil {
		t.Fatal(err)
	}

	wantSums := bigSum + "1000:1001 640 /home/u/owned\n"

	// In LXD: a stopped container from the test image with a file owned by a non-root
	// user and two snapshots (the file arrives between them).
	c := l.Prefix + "c"
	l.must("init", "debian12", c, "-c", "user.origin=lxd")
	l.must("snapshot", c, "snap0")
	l.must("file", "push", small, c+"/home/u/owned", "-p", "--uid", "1000", "--gid", "1001", "--mode", "0640")
	l.must("snapshot", c, "snap1")
	l.must("file", "push", big, c+"/root/big")
	lxdStarts := true
	if _, err := l.run("start", c); err != nil {
		// The Berth→LXD copies are then only checked on LXD's disk, not booted: in CI
		// that hides a missing check, so it fails there.
		lxdStarts = false
		if testutil.Strict() {
			t.Errorf("LXD cannot start containers on this host, so no copy is booted on LXD: %v", err)
		} else {
			t.Logf("LXD cannot start containers on this host (stopped ones only): %v", err)
		}
	} else {
		_, _ = l.run("stop", c, "--force")
	}

	lxdConf := l.must("config", "show", c)
	t.Logf("LXD's container:\n%s", lxdConf)

	arrived := func(t *testing.T, name string) {
		t.Helper()
		if got := strings.Join(snapshotNames(t, b, name), ","); got != "snap0,snap1" {
			t.Errorf("snapshots of %s on Berth: %q, want snap0,snap1", name, got)
		}

		_, inst := instanceOf(t, b, name)
		if inst.Config["user.origin"] != "lxd" {
			t.Errorf("config of %s on Berth: %v, want user.origin=lxd", name, inst.Config)
		}

		b.berth("start", name)
		if st := b.waitRunning(name); st != "running" && st != "degraded" {
			t.Fatalf("%s from LXD on Berth: systemd is %q", name, st)
		}

		out, err := b.inside(name, "sh", "-c", lxdMigSums)
		if err != nil || out != wantSums {
			t.Errorf("%s from LXD on Berth: %v\n%s\nwant\n%s", name, err, out, wantSums)
		}

		b.berth("stop", name)
	}

	for _, mode := range []string{"pull", "push", "relay"} {
		t.Run("LXD to Berth "+mode, func(t *testing.T) {
			name := "fromlxd-" + mode
			start := time.Now()
			lxc.in(t).must("copy", "L:"+c, "B:"+name, "--mode", mode)
			el := time.Since(start)
			t.Logf("lxc copy L:c B:%s --mode %s (%d MiB + 3 trees): %v, %.1f MB/s of the big file", name, mode, lxdMigBigSize>>20, el.Round(time.Millisecond), float64(lxdMigBigSize)/1e6/el.Seconds())
			arrived(t, name)
		})
	}

	t.Run("LXD to Berth move", func(t *testing.T) {
		m := l.Prefix + "m"
		l.must("copy", c, m)
		lxc.in(t).must("move", "L:"+m, "B:moved")
		if out, err := l.run("info", m); err == nil {
			t.Errorf("L:%s after the move: %s", m, out)
		}

		arrived(t, "moved")
	})

	// Berth→LXD: a stopped Berth container with the same content.
	lxc.must("launch", "B:debian/12", "B:bc", "-c", "user.origin=berth")
	if st := b.waitRunning("bc"); st != "running" && st != "degraded" {
		t.Fatalf("bc on Berth: systemd is %q", st)
	}

	out, err := b.inside("bc", "sh", "-c", "mkdir -p /home/u && echo owned > /home/u/owned && chown 1000:1001 /home/u/owned && chmod 0640 /home/u/owned")
	if err != nil {
		t.Fatalf("writing bc: %v %s", err, out)
	}

	b.berth("stop", "bc")
	b.berth("snapshot", "bc", "snap0")
	lxc.must("file", "push", big, "B:bc/root/big")
	b.berth("snapshot", "bc", "snap1")

	pool := filepath.Join(l.Dir, "p")
	for _, mode := range []string{"pull", "push", "relay"} {
		t.Run("Berth to LXD "+mode, func(t *testing.T) {
			name := l.Prefix + "b" + mode
			start := time.Now()
			lxc.in(t).must("copy", "B:bc", "L:"+name, "--mode", mode)
			el := time.Since(start)
			t.Logf("lxc copy B:bc L:%s --mode %s: %v, %.1f MB/s of the big file", name, mode, el.Round(time.Millisecond), float64(lxdMigBigSize)/1e6/el.Seconds())

			conf := l.must("config", "show", name)
			if !strings.Contains(conf, "volatile.last_state.idmap: '[]'") || !strings.Contains(conf, "user.origin: berth") {
				t.Errorf("LXD's config of %s:\n%s", name, conf)
			}

			if got := l.snapshots(name); got != "snap0,snap1" {
				t.Errorf("snapshots of %s on LXD: %q", name, got)
			}

			// LXD's snapshot trees are unshifted too, and their config says so.
			if sc := l.must("config", "show", name+"/snap0"); !strings.Contains(sc, "volatile.last_state.idmap: '[]'") {
				t.Errorf("LXD's config of %s/snap0:\n%s", name, sc)
			}

			// LXD stores the unshifted tree: the container's own ids, shifted at its
			// first start.
			root := filepath.Join(pool, "containers", name, "rootfs")
			for path, want := range map[string]string{"home/u/owned": "1000:1001", "root/big": "0:0"} {
				var st syscall.Stat_t
				if err := syscall.Lstat(filepath.Join(root, path), &st); err != nil {
					t.Errorf("%s on LXD: %v", path, err)
				} else if got := fmt.Sprintf("%d:%d", st.Uid, st.Gid); got != want {
					t.Errorf("%s on LXD's disk: owner %s, want %s", path, got, want)
				}
			}

			data, err := os.ReadFile(filepath.Join(root, "root/big"))
			if err != nil {
				t.Fatal(err)
			}

			sum := sha256.Sum256(data)
			if hex.EncodeToString(sum[:])+"  /root/big\n" != bigSum {
				t.Errorf("/root/big on LXD differs")
			}

			// Where LXD runs containers at all, the copy boots there: LXD shifts the
			// unshifted tree at its first start, and inside the owners are as on Berth.
			if !lxdStarts || mode != "pull" {
				return
			}

			l.must("start", name)
			t.Cleanup(func() { _, _ = l.run("stop", name, "--force") })
			got := strings.TrimSpace(l.must("exec", name, "--", "stat", "-c", "%u:%g %a", "/home/u/owned"))
			if got != "1000:1001 640" {
				t.Errorf("/home/u/owned inside %s on LXD: %q, want 1000:1001 640", name, got)
			}

			if got := l.must("exec", name, "--", "sha256sum", "/root/big"); got != bigSum {
				t.Errorf("/root/big inside %s on LXD: %q", name, got)
			}
		})
	}

	if code, _ := instanceOf(t, b, "bc"); code != http.StatusOK {
		t.Errorf("bc on Berth after the copies: %d", code)
	}

	// lxc copy --refresh from LXD (container_incremental_copy): a new file and snapshot
	// in LXD, snap0 deleted there; Berth's copy gets only what changed.
	t.Run("LXD to Berth refresh", func(t *testing.T) {
		news := filepath.Join(t.TempDir(), "new")
		if err := os.WriteFile(news, []byte("refreshed\n"), 0o644); err != nil {
			t.Fatal(err)
		}

		l.must("file", "push", news, c+"/root/new")
		l.must("snapshot", c, "snap2")
		l.must("delete", c+"/snap0")
		lxc.in(t).must("copy", "L:"+c, "B:fromlxd-pull", "--refresh")
		if got := strings.Join(snapshotNames(t, b, "fromlxd-pull"), ","); got != "snap1,snap2" {
			t.Errorf("snapshots of B:fromlxd-pull after the refresh: %q, want snap1,snap2", got)
		}

		moved := receivedBytes(t, b)
		t.Logf("lxc copy --refresh L:c B:fromlxd-pull: %d bytes received (the tree holds %d MiB)", moved, lxdMigBigSize>>20)
		if moved <= 0 || moved > lxdMigBigSize/4 {
			t.Errorf("the refresh from LXD received %d bytes; the unchanged big file must not travel again", moved)
		}

		b.berth("start", "fromlxd-pull")
		defer b.berth("stop", "fromlxd-pull")
		b.waitRunning("fromlxd-pull")
		out, err := b.inside("fromlxd-pull", "sh", "-c", "cat /root/new; "+lxdMigSums)
		if err != nil || out != "refreshed\n"+wantSums {
			t.Errorf("B:fromlxd-pull after the refresh: %v\n%s\nwant\nrefreshed\n%s", err, out, wantSums)
		}
	})

	// berthd killed while it receives from LXD: once restarted, nothing of it is left.
	t.Run("Berth killed", func(t *testing.T) {
		before := map[string]bool{}
		for _, p := range leftovers(b, "cut") {
			before[p] = true
		}

		done := make(chan error, 1)
		go func() {
			_, err := lxc.run("copy", "L:"+c, "B:cut")
			done <- err
		}()

		deadline := time.Now().Add(60 * time.Second)
		for {
			m, _ := filepath.Glob(filepath.Join(b.dir, "migrate", "jail-*"))
			if len(m) > 0 || time.Now().After(deadline) {
				break
			}

			time.Sleep(20 * time.Millisecond)
		}

		time.Sleep(300 * time.Millisecond)
		b.kill(syscall.SIGKILL)
		if err := <-done; err == nil {
			t.Fatalf("lxc copy with berthd killed succeeded")
		}

		b.start()
		left := []string{}
		for _, p := range leftovers(b, "cut") {
			if !before[p] {
				left = append(left, p)
			}
		}

		if code, _ := instanceOf(t, b, "cut"); code != http.StatusNotFound || len(left) != 0 {
			t.Errorf("Berth after the cut: instance %d, left on disk %v", code, left)
		}

		// LXD 5.0.2 itself sometimes panics in its operations.Cancel when its migration
		// peer vanishes: that is LXD's bug, not state Berth left, so that one exit is
		// accepted (this subtest runs last for it). Any other failure of LXD fails.
		if out, err := l.run("list", "--format", "csv", "-c", "n"); err != nil {
			if !l.ExitedWith("lxd/operations.(*Operation).Cancel") {
				t.Errorf("LXD after the cut: %v %s", err, out)
			} else {
				t.Logf("LXD 5.0.2 panicked in its operations.Cancel on the cut (its bug): %v", err)
				l.AcceptExit()
			}
		}
	})
}
