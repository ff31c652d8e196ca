package images

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime/debug"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// SquashfsHelper is the hidden subcommand (os.Args[1]) that turns a squashfs on stdin
// into a rootfs/ tar stream on stdout (SquashfsToTar).
//
// Why a process of its own: the squashfs library decompresses each block whole into
// memory (io.ReadAll), so one hostile 1 MiB block can claim gigabytes, and a corrupt
// image may make it allocate what an inode's fields claim. Run in the daemon, that would
// take berthd down; in this child, an address-space limit turns it into a failed import.
// The child drops to nobody and no_new_privs before it reads a byte: the file comes in as
// an fd, the tar goes out on a pipe, and the daemon's unpacker applies every tar rule.
const SquashfsHelper = "berth-squashfs"

// IsSquashfsHelper says whether args (os.Args) run the squashfs helper.
func IsSquashfsHelper(args []string) bool { return len(args) > 1 && args[1] == SquashfsHelper }

// squashfsHelperMemory is the child's address-space limit.
const squashfsHelperMemory = 3 << 30

// SquashfsHelperMain runs the helper and returns its exit code.
func SquashfsHelperMain() int {
	err := squashfsHelper()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}

	return 0
}

func squashfsHelper() error {
	err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
	if err != nil {
		return fmt.Errorf("setting no_new_privs: %w", err)
	}

	if os.Geteuid() == 0 {
		// Nothing to open: drop every privilege before reading the hostile file.
		err = syscall.Setgroups(nil)
		if err == nil {
			err = syscall.Setresgid(65534, 65534, 65534)
		}

		if err == nil {
			err = syscall.Setresuid(65534, 65534, 65534)
		}

		if err != nil {
			return fmt.Errorf("dropping privileges: %w", err)
		}
	}

	err = unix.Setrlimit(unix.RLIMIT_AS, &unix.Rlimit{Cur: squashfsHelperMemory, Max: squashfsHelperMemory})
	if err != nil {
		return fmt.Errorf("limiting memory: %w", err)
	}

	debug.SetMemoryLimit(squashfsHelperMemory / 2)

	out := bufio.NewWriterSize(os.Stdout, 1<<20)

	err = SquashfsToTar(os.Stdin, out, DefaultSquashfsLimits)
	if err != nil {
		return err
	}

	return out.Flush()
}

// squashfsTimeout bounds one conversion.
const squashfsTimeout = time.Hour

// openSquashfsTar starts the helper on the squashfs at path and returns its tar stream.
// wait reaps the helper and returns its error (with what it said on stderr); it must be
// called, after the stream is read or abandoned (it then kills the helper).
func openSquashfsTar(path string) (stream io.Reader, wait func() error, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, fmt.Errorf("opening rootfs %q: %w", path, err)
	}

	defer f.Close()

	var magic [4]byte

	_, err = f.ReadAt(magic[:], 0)
	if err != nil || !bytes.Equal(magic[:], magicSquashfs) {
		return nil, nil, fmt.Errorf("%w: the rootfs is not a squashfs", ErrUnknownFormat)
	}

	stderr := &limitedBuffer{max: 4096}
	cmd := exec.Command("/proc/self/exe", SquashfsHelper)
	cmd.Args[0] = "berthd"
	cmd.Stdin = f
	cmd.Stderr = stderr
	cmd.Env = []string{}
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}

	pipe, err := cmd.StdoutPipe()
	if err != nil {
		return nil, nil, err
	}

	err = cmd.Start()
	if err != nil {
		return nil, nil, fmt.Errorf("starting the squashfs reader: %w", err)
	}

	timer := time.AfterFunc(squashfsTimeout, func() { _ = cmd.Process.Kill() })

	wait = func() error {
		timer.Stop()
		// Unblocks a helper still writing when the caller stopped reading early.
		_ = pipe.Close()

		err := cmd.Wait()
		if err != nil {
			msg := strings.TrimSpace(stderr.String())
			if msg == "" {
				msg = err.Error()
			}

			return fmt.Errorf("reading squashfs: %s", msg)
		}

		return nil
	}

	return pipe, wait, nil
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	bytes.Buffer
	max int
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := b.max - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(room, len(p))])
	}

	return len(p), nil
}
