package imagebuild

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
)

// ErrNoDebootstrap is returned when the debootstrap program is missing.
var ErrNoDebootstrap = errors.New("debootstrap not found: install the debootstrap package (apt-get install debootstrap)")

// buildEnv is the environment of debootstrap and of the chroot: a root PATH whatever the
// caller's, and no locale or debconf questions.
var buildEnv = []string{
	"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
	"LC_ALL=C",
	"DEBIAN_FRONTEND=noninteractive",
	"HOME=/root",
}

func findDebootstrap() (string, error) {
	p, err := exec.LookPath("debootstrap")
	if err == nil {
		return p, nil
	}

	for _, p := range []string{"/usr/sbin/debootstrap", "/sbin/debootstrap"} {
		_, err := os.Stat(p)
		if err == nil {
			return p, nil
		}
	}

	return "", ErrNoDebootstrap
}

// isolatedCommand runs in its own process group (so cancelling kills debootstrap's dpkg
// children too) and its own mount namespace, made private by the Go runtime: the proc and
// sys mounts debootstrap makes in the target vanish with it, even if it is killed, and can
// never leak into the host's namespace where removing the tree would descend into them.
func isolatedCommand(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = buildEnv
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Unshareflags: syscall.CLONE_NEWNS}
	cmd.Cancel = func() error {
		return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}

	return cmd
}

// debootstrap runs debootstrap into target, reporting progress from its "I:" lines.
func debootstrap(ctx context.Context, r *Recipe, target, mirror string, prog *tracker) error {
	bin, err := findDebootstrap()
	if err != nil {
		return err
	}

	args := []string{
		"--variant=" + r.Variant,
		"--arch=" + r.Architecture,
		"--components=" + strings.Join(r.Components, ","),
	}

	if len(r.Include) > 0 {
		args = append(args, "--include="+strings.Join(r.Include, ","))
	}

	args = append(args, r.Suite, target, mirror)

	cmd := isolatedCommand(ctx, bin, args...)

	out, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("running debootstrap: %w", err)
	}

	cmd.Stderr = cmd.Stdout

	err = cmd.Start()
	if err != nil {
		return fmt.Errorf("running debootstrap: %w", err)
	}

	tail := &lineTail{max: 20}
	readDebootstrapOutput(out, prog, tail)

	err = cmd.Wait()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("running debootstrap: %w", ctx.Err())
		}

		log, _ := os.ReadFile(filepath.Join(target, "debootstrap", "debootstrap.log"))
		logTail := &lineTail{max: 20}
		for _, l := range strings.Split(string(log), "\n") {
			logTail.add(l)
		}

		return fmt.Errorf("running debootstrap %s: %w\n%s\n%s", strings.Join(args, " "), err, tail, logTail)
	}

	return nil
}

// readDebootstrapOutput turns debootstrap's "I: <Verb> ..." lines into progress.
func readDebootstrapOutput(r io.Reader, prog *tracker, tail *lineTail) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		line := sc.Text()
		tail.add(line)

		msg, ok := strings.CutPrefix(line, "I: ")
		if !ok {
			continue
		}

		verb, rest, _ := strings.Cut(msg, " ")
		switch verb {
		case "Resolving", "Checking", "Found":
			prog.step(stageResolve, 0)
		case "Retrieving":
			// Before resolution debootstrap retrieves the Release and Packages indexes.
			if prog.stage >= stageResolve && rest != "Packages" && rest != "InRelease" && rest != "Release" {
				prog.step(stageRetrieve, 1)
			}
		case "Extracting":
			prog.step(stageExtract, 1)
		case "Installing", "Unpacking":
			prog.step(stageUnpack, 1)
		case "Configuring":
			prog.step(stageConfigure, 1)
		}
	}

	_, _ = io.Copy(io.Discard, r)
}

// lineTail keeps the last lines of a program's output for error messages.
type lineTail struct {
	max   int
	lines []string
}

func (t *lineTail) add(line string) {
	if strings.TrimSpace(line) == "" {
		return
	}

	t.lines = append(t.lines, line)
	if len(t.lines) > t.max {
		t.lines = t.lines[1:]
	}
}

func (t *lineTail) String() string { return strings.Join(t.lines, "\n") }
