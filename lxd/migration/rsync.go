package migration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/idmap"
	"github.com/berth-dev/berth/shared/ws"
)

// The rsync options of both ends, the wire contract LXD's ends use too: the sender runs
// rsync as a client, the receiver as its server; the two option sets must agree or the
// file list does not decode.
var (
	sendArgs = []string{"-ar", "--devices", "--numeric-ids", "--partial", "--sparse"}
	recvArgs = []string{"--server", "-vlogDtpre.iLsfx", "--numeric-ids", "--devices", "--partial", "--sparse"}
)

// stallArg ends an rsync end that has seen no data for 5 minutes (a local option: it
// does not change what goes on the wire).
const stallArg = "--timeout=300"

// remoteShell is the sender's "remote shell": it joins rsync's pipes to fd 3, the
// sender's end of the fs websocket bridge, and ends when the receiver's side of the
// stream does (rsync waits for it before it exits). Its stdin is kept as fd 4 for the
// background copy, whose stdin would otherwise be /dev/null.
const remoteShell = "sh -c 'exec 4<&0; cat <&4 >&3 & exec cat <&3'"

// jailBasis is where a receiver's basis volumes are in its jail: /basis0, /basis1...
const jailBasis = "/basis"

// Basis is a tree a receiver compares with (rsync's --copy-dest): files the sender has
// unchanged are copied from it rather than sent, and a changed file's basis file serves
// as the delta base, so only the changed blocks travel.
type Basis struct {
	// Dir is a volume (rootfs/ in it) as a pool image holds it: owners as the container
	// sees them, mapped into the receiver's ids by an idmapped mount. With Root set, Dir
	// is a mounted root filesystem with the receiver's own host ids (an existing
	// instance's, a refresh's), bound as rootfs/ without a mapping.
	Dir  string
	Root bool
}

// maxBases is rsync's limit on --copy-dest directories.
const maxBases = 20

// drainTimeout bounds the wait for the other side's end of stream once rsync is done.
const drainTimeout = 30 * time.Second

// featureArgs are the rsync options of the agreed features (both ends add them).
func featureArgs(features []string) []string {
	out := []string{}
	for _, f := range features {
		switch f {
		case FeatureXattrs:
			out = append(out, "--xattrs", "--filter=-x security.selinux")
		case FeatureDelete:
			out = append(out, "--delete")
		case FeatureCompress:
			out = append(out, "--compress", "--compress-level=2")
		}
	}

	return out
}

// Send sends one volume over conn as one rsync run: rootfs as rootfs/, and metaDir's
// metadata.yaml and templates/ when metaDir is set (LXD's volume layout), read as the
// container whose ids are ids sees them. base is a private directory for the jail.
func Send(ctx context.Context, base, rootfs, metaDir string, ids idmap.Set, conn *ws.Conn, features []string) error {
	_, err := os.Stat(rsyncPath)
	if err != nil {
		return errNoRsync
	}

	j, err := newJail(base)
	if err != nil {
		return fmt.Errorf("preparing the rsync sender: %w", err)
	}

	defer j.close()

	err = j.bindSource(rootfs, metaDir)
	if err == nil {
		err = j.bindDevNull()
	}

	if err != nil {
		return fmt.Errorf("preparing the rsync sender: %w", err)
	}

	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}

	ours := os.NewFile(uintptr(fds[0]), "migration-fs")
	theirs := os.NewFile(uintptr(fds[1]), "migration-fs-rsync")
	defer ours.Close()

	args := append(append(append([]string{}, sendArgs...), featureArgs(features)...), stallArg, jailTree+"/", "localhost:/tmp/foo", "-e", remoteShell)
	cmd := j.command(ctx, ContainerMapping(ids), args...)
	out := &capped{max: 16 << 10}
	cmd.Stdout, cmd.Stderr = out, out
	cmd.ExtraFiles = []*os.File{theirs}

	err = cmd.Start()
	_ = theirs.Close()
	if err != nil {
		return fmt.Errorf("starting the rsync sender: %w", err)
	}

	sent := ws.Send(conn, ours)
	received := ws.Receive(conn, ours)
	go func() {
		<-received
		_ = unix.Shutdown(int(ours.Fd()), unix.SHUT_WR)
	}()

	err = cmd.Wait()
	if err != nil {
		return fmt.Errorf("rsync sender: %w (%s)", err, out.tail())
	}

	// The stream ends once rsync's shell has seen the receiver's end.
	select {
	case <-sent:
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(drainTimeout):
		return fmt.Errorf("rsync sender: the receiver did not end its stream")
	}

	return nil
}

// Recv receives one rsync run from conn into dir, an empty directory (the volume: LXD's
// layout has the root filesystem in rootfs/; owners land on disk as the container sees
// them), writing as the container whose ids are ids, the wire's ids mapped by m. base is a
// private directory for the jail.
//
// bases, when set, are trees to compare with (the volume received before this one, the
// previous snapshot's; for a refresh, the target's current root): read-only in the jail,
// files the sender has unchanged are copied from them rather than sent again (rsync's
// --copy-dest), as LXD's receiver gets its snapshots as deltas. Their contents are the
// containers' (hostile) like the stream: rsync only reads them, inside the same jail, as
// the same container.
//
// It returns the bytes of the sender's stream it read (what the transfer cost).
func Recv(ctx context.Context, base, dir string, bases []Basis, ids idmap.Set, m Mapping, conn *ws.Conn, features []string) (int64, error) {
	var in counter
	err := recv(ctx, base, dir, bases, ids, m, conn, features, &in)
	return in.n.Load(), err
}

// counter counts the bytes written through it.
type counter struct {
	w io.Writer
	n atomic.Int64
}

func (c *counter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

func recv(ctx context.Context, base, dir string, bases []Basis, ids idmap.Set, m Mapping, conn *ws.Conn, features []string, in *counter) error {
	_, err := os.Stat(rsyncPath)
	if err != nil {
		return errNoRsync
	}

	j, err := newJail(base)
	if err != nil {
		return fmt.Errorf("preparing the rsync receiver: %w", err)
	}

	defer j.close()

	err = j.bindTarget(dir, ids)
	if err != nil {
		return fmt.Errorf("preparing the rsync receiver: %w", err)
	}

	args := append(append(append(append([]string{}, recvArgs...), featureArgs(features)...), m.usermapArgs()...), stallArg)
	if len(bases) > maxBases {
		return fmt.Errorf("%d basis trees (at most %d)", len(bases), maxBases)
	}

	for i, b := range bases {
		rel := fmt.Sprintf("%s%d", jailBasis[1:], i)
		if b.Root {
			j.made = append(j.made, filepath.Join(j.root, rel)) // removed after its rootfs
			err = j.bind(b.Dir, rel+"/rootfs", treeAttrs|unix.MOUNT_ATTR_RDONLY, nil)
		} else {
			err = j.bind(b.Dir, rel, treeAttrs|unix.MOUNT_ATTR_RDONLY, &ids)
		}

		if err != nil {
			return fmt.Errorf("preparing the rsync receiver: %w", err)
		}

		args = append(args, "--copy-dest=/"+rel+"/")
	}

	args = append(args, ".", jailTree+"/")
	cmd := j.command(ctx, m, args...)
	errOut := &capped{max: 16 << 10}
	cmd.Stderr = errOut

	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}

	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}

	err = cmd.Start()
	if err != nil {
		return fmt.Errorf("starting the rsync receiver: %w", err)
	}

	in.w = stdin
	received := ws.Receive(conn, in)
	go func() {
		<-received
		_ = stdin.Close()
	}()

	sent := ws.Send(conn, stdout)
	<-sent

	err = cmd.Wait()
	if err != nil {
		return fmt.Errorf("rsync receiver: %w (%s)", err, errOut.tail())
	}

	// The sender's end of stream must be read before the next run starts.
	select {
	case <-received:
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(drainTimeout):
		return fmt.Errorf("rsync receiver: the sender did not end its stream")
	}

	return nil
}

// bindDevNull gives the jail /dev/null (sh opens it for background jobs).
func (j *jail) bindDevNull() error {
	return j.bind("/dev/null", "dev/null", unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NOEXEC, nil)
}

// capped keeps the last max bytes written to it: rsync's messages, for errors.
type capped struct {
	mu  sync.Mutex
	max int
	buf bytes.Buffer
}

func (c *capped) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()

	c.buf.Write(p)
	if c.buf.Len() > c.max {
		b := c.buf.Bytes()[c.buf.Len()-c.max:]
		c.buf = *bytes.NewBuffer(append([]byte{}, b...))
	}

	return len(p), nil
}

func (c *capped) tail() string {
	c.mu.Lock()
	defer c.mu.Unlock()

	return strings.TrimSpace(c.buf.String())
}
