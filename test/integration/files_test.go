package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/test/testutil"
)

// TestFiles pushes and pulls through the files API on a running and a stopped container,
// and runs the symlink attacks of the issue: every path must resolve inside the container.
func TestFiles(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	d.berth("launch", "debian/12", "f1")
	if st := d.waitRunning("f1"); st != "running" && st != "degraded" {
		t.Fatalf("f1 is %q", st)
	}

	local := t.TempDir()

	t.Run("big-file-round-trip", func(t *testing.T) {
		src := filepath.Join(local, "big")
		sum := writeRandom(t, src, 100<<20)
		d.berth("file", "push", "--uid", "1000", "--gid", "1001", "--mode", "0640", src, "f1/root/big")

		out, err := d.inside("f1", "stat", "-c", "%u %g %a %s", "/root/big")
		if err != nil || strings.TrimSpace(out) != "1000 1001 640 104857600" {
			t.Fatalf("inside: stat says %q (%v), want 1000 1001 640 104857600", out, err)
		}

		out, _ = d.inside("f1", "sha256sum", "/root/big")
		if !strings.HasPrefix(out, sum) {
			t.Fatalf("content differs inside: %q, want %s", out, sum)
		}

		back := filepath.Join(local, "big.back")
		d.berth("file", "pull", "f1/root/big", back)
		if got := fileSum(t, back); got != sum {
			t.Fatalf("pulled content differs: %s, want %s", got, sum)
		}

		fi, _ := os.Stat(back)
		if fi.Mode().Perm() != 0o640 {
			t.Errorf("pulled mode %v, want 0640", fi.Mode().Perm())
		}
	})

	t.Run("recursive", func(t *testing.T) {
		tree := filepath.Join(local, "tree")
		must(t, os.MkdirAll(filepath.Join(tree, "sub/deeper"), 0o755))
		must(t, os.WriteFile(filepath.Join(tree, "a.txt"), []byte("alpha\n"), 0o600))
		must(t, os.WriteFile(filepath.Join(tree, "sub/deeper/b.txt"), []byte("beta\n"), 0o755))
		must(t, os.Symlink("../a.txt", filepath.Join(tree, "sub/link")))

		d.berth("file", "push", "-r", tree, "f1/opt/")
		out, err := d.inside("f1", "sh", "-c", "cat /opt/tree/a.txt /opt/tree/sub/deeper/b.txt; readlink /opt/tree/sub/link; stat -c %a /opt/tree/a.txt /opt/tree/sub/deeper/b.txt")
		if err != nil || out != "alpha\nbeta\n../a.txt\n600\n755\n" {
			t.Fatalf("inside after push -r: %q (%v)", out, err)
		}

		back := filepath.Join(local, "back")
		d.berth("file", "pull", "-r", "-p", "f1/opt/tree", back+"/")
		data, err := os.ReadFile(filepath.Join(back, "tree/sub/deeper/b.txt"))
		if err != nil || string(data) != "beta\n" {
			t.Fatalf("pull -r: %q %v", data, err)
		}

		target, err := os.Readlink(filepath.Join(back, "tree/sub/link"))
		if err != nil || target != "/opt/tree/a.txt" {
			t.Fatalf("pulled link = %q (%v), want the absolute target inside", target, err)
		}

		d.berth("file", "delete", "f1/opt/tree")
		if out, err := d.inside("f1", "ls", "/opt/tree"); err == nil {
			t.Fatalf("/opt/tree still there after delete: %s", out)
		}
	})

	t.Run("ids-outside-the-map", func(t *testing.T) {
		src := filepath.Join(local, "small")
		must(t, os.WriteFile(src, []byte("x"), 0o644))
		out, err := d.berthErr("file", "push", "--uid", "70000", src, "f1/root/small")
		if err == nil || !strings.Contains(out, "outside") {
			t.Fatalf("push with uid 70000: %v %s, want a 400 refusal", err, out)
		}
	})

	t.Run("pull-through-symlink-to-shadow", func(t *testing.T) {
		hostShadow, _ := os.ReadFile("/etc/shadow")
		inShadow, err := d.inside("f1", "cat", "/etc/shadow")
		if err != nil {
			t.Fatal(err)
		}

		// /tmp is on the root filesystem; /run is the container's own tmpfs, which only the
		// container's mount namespace shows.
		for _, link := range []string{"/tmp/s", "/run/s"} {
			_, err = d.inside("f1", "ln", "-sfn", "/etc/shadow", link)
			must(t, err)
			out := d.berth("file", "pull", "f1"+link, "-")
			if out != inShadow {
				t.Fatalf("pull %s gave %d bytes, not the container's shadow", link, len(out))
			}

			if bytes.Equal([]byte(out), hostShadow) {
				t.Fatalf("pull %s returned the host's /etc/shadow", link)
			}
		}

		// A file only the container's /run tmpfs holds is reachable: the view is the container's.
		_, err = d.inside("f1", "sh", "-c", "echo only-in-run > /run/marker")
		must(t, err)
		if out := d.berth("file", "pull", "f1/run/marker", "-"); out != "only-in-run\n" {
			t.Fatalf("pull /run/marker = %q: the host's view of the rootfs was used", out)
		}
	})

	t.Run("push-through-symlink-to-root", func(t *testing.T) {
		_, err := d.inside("f1", "ln", "-sfn", "/", "/tmp/d")
		must(t, err)
		src := filepath.Join(local, "pwned")
		must(t, os.WriteFile(src, []byte("inside\n"), 0o644))
		d.berth("file", "push", src, "f1/tmp/d/berth-pwned")

		out, err := d.inside("f1", "cat", "/berth-pwned")
		if err != nil || out != "inside\n" {
			t.Fatalf("file not in the container's /: %q %v", out, err)
		}

		_, err = os.Stat("/berth-pwned")
		if err == nil {
			_ = os.Remove("/berth-pwned")
			t.Fatal("push through /tmp/d -> / wrote the host's /")
		}
	})

	t.Run("swap-race", func(t *testing.T) {
		swapRace(t, d, "f1")
	})

	t.Run("stopped", func(t *testing.T) {
		d.berth("stop", "-f", "f1")
		src := filepath.Join(local, "cold")
		must(t, os.WriteFile(src, []byte("cold\n"), 0o600))
		d.berth("file", "push", "--uid", "0", "--gid", "0", src, "f1/root/cold")
		if out := d.berth("file", "pull", "f1/root/cold", "-"); out != "cold\n" {
			t.Fatalf("pull from stopped: %q", out)
		}

		out := d.berth("file", "pull", "f1/etc/hostname", "-")
		if strings.TrimSpace(out) == "" {
			t.Fatal("empty /etc/hostname from the stopped container")
		}

		d.berth("start", "f1")
		d.waitRunning("f1")
		out, err := d.inside("f1", "stat", "-c", "%u %a %n", "/root/cold")
		if err != nil || strings.TrimSpace(out) != "0 600 /root/cold" {
			t.Fatalf("after start: %q %v", out, err)
		}
	})

	t.Run("stock-lxc", func(t *testing.T) {
		lxc := stockLXC(t, d)
		src := filepath.Join(local, "lxc.txt")
		must(t, os.WriteFile(src, []byte("from lxc\n"), 0o604))
		lxc("file", "push", src, "f1/root/lxc.txt")
		lxc("file", "push", "-p", src, "f1/srv/a/b/lxc.txt")
		if out := lxc("file", "pull", "f1/srv/a/b/lxc.txt", "-"); out != "from lxc\n" {
			t.Fatalf("lxc file pull -: %q", out)
		}

		dst := filepath.Join(local, "lxc.back")
		lxc("file", "pull", "f1/root/lxc.txt", dst)
		data, _ := os.ReadFile(dst)
		fi, _ := os.Stat(dst)
		if string(data) != "from lxc\n" || fi.Mode().Perm() != 0o604 {
			t.Fatalf("lxc file pull: %q %v", data, fi.Mode())
		}

		lxc("file", "delete", "f1/root/lxc.txt")
		if _, err := d.inside("f1", "test", "-e", "/root/lxc.txt"); err == nil {
			t.Fatal("lxc file delete left the file")
		}
	})
}

// swapRaceFor is how long the swap race runs.
const swapRaceFor = 8 * time.Second

// swapRace has the container swap /tmp/sw between a directory and a symlink to / for
// swapRaceFor while the host pushes and pulls through it. Nothing may appear in the host's
// /, and some pushes must have gone through the link (into the container's /). The
// swapper is one perl process (perl-base is essential in Debian) holding each state
// ~100 µs: the shell loop it replaces ran rm, mkdir and ln, 4,000 execs for 1,000 swaps,
// which took over a minute of a loaded 2-core host's CPU.
func swapRace(t *testing.T, d *daemon, name string) {
	pid := d.initPID(name)
	// clear removes /tmp/sw, again while the host's pushes fill the directory.
	script := fmt.Sprintf(`use File::Path qw(remove_tree);
sub clear {
	for (1..1000) {
		unlink("/tmp/sw") or remove_tree("/tmp/sw", {error => \my $e});
		lstat("/tmp/sw") or return;
	}
	die "cannot remove /tmp/sw\n";
}
my ($end, $n) = (time + %d, 0);
while (time < $end) {
	clear(); mkdir("/tmp/sw") or die "mkdir: $!\n"; select(undef, undef, undef, 0.0001);
	clear(); symlink("/", "/tmp/sw") or die "symlink: $!\n"; select(undef, undef, undef, 0.0001);
	$n++;
}
print "$n swaps\n";`, int(swapRaceFor/time.Second))
	cmd := exec.Command("nsenter", "-t", fmt.Sprint(pid), "-a", "--", "perl", "-e", script)
	cmd.Env = []string{"PATH=/usr/sbin:/usr/bin:/sbin:/bin"}
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	must(t, cmd.Start())
	finished := make(chan error, 1)
	go func() { finished <- cmd.Wait() }()
	t.Cleanup(func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-finished
		}
	})

	ctx := context.Background()
	var pushes, ok atomic.Int64
	// A guard against a hang only.
	deadline := time.After(swapRaceFor + 2*time.Minute)
loop:
	for i := 0; ; i++ {
		select {
		case err := <-finished:
			if err != nil {
				t.Fatalf("swapper: %v\n%s", err, out.String())
			}

			break loop
		case <-deadline:
			t.Fatal("swapper did not finish")
		default:
		}

		p := fmt.Sprintf("/tmp/sw/berth-race-%d", i)
		pushes.Add(1)
		err := d.c.CreateInstanceFile(ctx, name, p, client.InstanceFileArgs{Content: strings.NewReader("race\n"), UID: -1, GID: -1, Mode: -1})
		if err == nil {
			ok.Add(1)
		} else if !api.StatusErrorCheck(err, 404) && !api.StatusErrorCheck(err, 400) {
			t.Errorf("push %s: %v", p, err)
		}

		body, f, err := d.c.GetInstanceFile(ctx, name, "/tmp/sw/etc/shadow")
		if err == nil && body != nil {
			data, _ := io.ReadAll(body)
			body.Close()
			host, _ := os.ReadFile("/etc/shadow")
			if bytes.Equal(data, host) && f != nil {
				t.Fatal("pulled the host's /etc/shadow through the swapping link")
			}
		}
	}

	leaked, _ := filepath.Glob("/berth-race-*")
	for _, l := range leaked {
		_ = os.Remove(l)
	}

	if len(leaked) > 0 {
		t.Fatalf("%d pushes landed in the host's /: %v", len(leaked), leaked)
	}

	// A push that went through the link lands in the container's /: some must have,
	// or the race never had the host resolve the symlink.
	throughLink, _ := d.inside(name, "sh", "-c", "ls / | grep -c berth-race-")
	throughLink = strings.TrimSpace(throughLink)
	t.Logf("%s: %d pushes during the swap race, %d accepted, %s of them through the link to the container's /", strings.TrimSpace(out.String()), pushes.Load(), ok.Load(), throughLink)
	if ok.Load() == 0 || throughLink == "0" || throughLink == "" {
		t.Fatal("no push went through the swapping link during the race: the test proved nothing")
	}
}

// stockLXC returns a runner for Debian's lxc against d, skipping when it is not installed.
func stockLXC(t *testing.T, d *daemon) func(args ...string) string {
	t.Helper()
	bin := testutil.LookPath(t, "lxc", "Debian package lxd-client")

	conf := t.TempDir()
	run := func(args ...string) (string, error) {
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "LXD_DIR="+d.dir, "LXD_CONF="+conf)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}

	_, _ = run("list") // a fresh LXD_CONF only prints a welcome hint
	return func(args ...string) string {
		t.Helper()
		out, err := run(args...)
		if err != nil {
			t.Fatalf("lxc %s: %v\n%s", strings.Join(args, " "), err, out)
		}

		return out
	}
}

func writeRandom(t *testing.T, path string, size int) string {
	t.Helper()
	f, err := os.Create(path)
	must(t, err)
	defer f.Close()
	rng := rand.NewChaCha8([32]byte{1, 2, 3})
	h := sha256.New()
	_, err = io.CopyN(io.MultiWriter(f, h), rng, int64(size))
	must(t, err)
	return hex.EncodeToString(h.Sum(nil))
}

func fileSum(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	must(t, err)
	defer f.Close()
	h := sha256.New()
	_, err = io.Copy(h, f)
	must(t, err)
	return hex.EncodeToString(h.Sum(nil))
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
