package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/shared/atomicfile"
)

// berthd --preseed FILE: the YAML of `lxd init --preseed` (client.Preseed), read and
// checked before anything starts (a bad file stops berthd at once, nothing changed), and
// applied once the API is up through the unix socket, by the same code as `berth init
// --preseed` (client.ApplyPreseed: LXD's order, rollback on failure). A preseed that
// fails stops berthd with an error (exit 1) after its rollback.
//
// Applied once per content: the SHA-256 of the last preseed applied is kept in
// preseedMarker, and a start with the same file does nothing more. That covers the
// restart of a join or enable (berthd re-execs itself with the same arguments) and every
// later start of a unit that keeps --preseed on its command line. A changed file is
// applied at the next start. Once a preseed was applied its file may be removed (a join
// token is a secret): a start whose file is gone then only logs it.

const (
	preseedMarker  = "preseed.applied"
	preseedTimeout = 10 * time.Minute // the whole apply, a join included
)

// preseedFile is a checked preseed and the digest of its bytes.
type preseedFile struct {
	path string
	sum  string
	p    *client.Preseed
}

// preseedState is what run needs of an apply that failed.
type preseedState struct {
	mu  sync.Mutex
	err error
}

// loadPreseed reads and checks path: a regular file (opened non-blocking: a FIFO must
// not hang the start) of at most client.MaxPreseedSize bytes. A missing file is nil, no
// error, when a preseed was applied in dir before.
func loadPreseed(dir, path string) (*preseedFile, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		if _, merr := os.Stat(filepath.Join(dir, preseedMarker)); merr == nil {
			return nil, nil
		}
	}

	if err != nil {
		return nil, fmt.Errorf("preseed: %w", err)
	}

	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("preseed: %w", err)
	}

	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("preseed: %s is not a regular file", path)
	}

	data, err := io.ReadAll(io.LimitReader(f, client.MaxPreseedSize+1))
	if err != nil {
		return nil, fmt.Errorf("preseed: reading %s: %w", path, err)
	}

	if len(data) > client.MaxPreseedSize {
		return nil, fmt.Errorf("preseed: %s is larger than %d bytes", path, client.MaxPreseedSize)
	}

	p, err := client.ParsePreseed(data)
	if err != nil {
		return nil, fmt.Errorf("preseed %s: %w", path, err)
	}

	sum := sha256.Sum256(data)
	return &preseedFile{path: path, sum: hex.EncodeToString(sum[:]), p: p}, nil
}

// startPreseed (pf nil: no preseed) applies pf in the background once the API serves on socket; on failure
// it records the error and stops the daemon through stop (as a signal would).
func (d *Daemon) startPreseed(pf *preseedFile, socket string, stop chan<- os.Signal) {
	if pf == nil {
		return
	}

	marker := filepath.Join(d.dir, preseedMarker)
	last, _ := os.ReadFile(marker)
	if strings.TrimSpace(string(last)) == pf.sum {
		d.log.Info("preseed already applied", "path", pf.path)
		return
	}

	go func() {
		err := d.applyPreseed(pf, socket)
		if err == nil {
			err = atomicfile.WriteDurable(marker, []byte(pf.sum+"\n"), 0o600)
			if err == nil {
				d.log.Info("preseed applied", "path", pf.path)
				return
			}

			err = fmt.Errorf("preseed applied, but recording it: %w", err)
		}

		d.log.Error("preseed failed", "path", pf.path, "err", err)
		d.preseed.mu.Lock()
		d.preseed.err = err
		d.preseed.mu.Unlock()
		select {
		case stop <- syscall.SIGTERM:
		default: // a signal is pending: the daemon stops anyway
		}
	}()
}

func (d *Daemon) applyPreseed(pf *preseedFile, socket string) error {
	ctx, cancel := context.WithTimeout(context.Background(), preseedTimeout)
	defer cancel()
	c, err := client.Connect(socket)
	if err != nil {
		return err
	}

	d.log.Info("applying preseed", "path", pf.path)
	err = c.ApplyPreseed(ctx, pf.p)
	if err != nil {
		return fmt.Errorf("preseed %s: %w", pf.path, err)
	}

	return nil
}

// preseedFailure is the error of a preseed that failed (nil if none did).
func (d *Daemon) preseedFailure() error {
	d.preseed.mu.Lock()
	defer d.preseed.mu.Unlock()
	return d.preseed.err
}
