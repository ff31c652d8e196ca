package container

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/berth-dev/berth/lxd/setup"
	"golang.org/x/sys/unix"
)

// initMain is `__init`: the child cloned into the container's namespaces.
// It runs on the main OS thread, locked in init() (helper.go).
//
// Owns: user (root inside), mount, pid (we are PID 1), uts, ipc, net.
// Still the monitor's: cgroup namespace, until cgroup-ready.
func initMain() int {
	f := os.NewFile(3, "sync")
	enc := json.NewEncoder(f)
	dec := json.NewDecoder(f)

	err := runInit(enc, dec)
	if err != nil {
		_ = enc.Encode(syncMsg{Type: syncError, Error: err.Error()})
		fmt.Fprintln(os.Stderr, "berth init:", err)

		return 1
	}

	return 0
}

func runInit(enc *json.Encoder, dec *json.Decoder) error {
	var msg syncMsg

	err := dec.Decode(&msg)
	if err != nil {
		return fmt.Errorf("reading config: %w", err)
	}

	if msg.Type != syncConfig || msg.Config == nil || msg.Version != syncVersion {
		return fmt.Errorf("unexpected first message %q (version %d)", msg.Type, msg.Version)
	}

	cfg := *msg.Config

	err = enc.Encode(syncMsg{Type: syncReadyForCgroup})
	if err != nil {
		return fmt.Errorf("sending %s: %w", syncReadyForCgroup, err)
	}

	err = expect(dec, syncCgroupReady)
	if err != nil {
		return err
	}

	// We now sit in the container's cgroup: a new cgroup namespace rooted
	// there is what makes the cgroup2 mount in setup show only the
	// container's subtree.
	err = unix.Unshare(unix.CLONE_NEWCGROUP)
	if err != nil {
		return fmt.Errorf("unsharing cgroup namespace: %w", err)
	}

	err = setup.Prepare(cfg)
	if err != nil {
		return err
	}

	return setup.Exec(cfg, func() error {
		return enc.Encode(syncMsg{Type: syncExecing})
	})
}

func expect(dec *json.Decoder, want syncType) error {
	var msg syncMsg

	err := dec.Decode(&msg)
	if err != nil {
		return fmt.Errorf("waiting for %s: %w", want, err)
	}

	if msg.Type == syncError {
		return fmt.Errorf("monitor: %s", msg.Error)
	}

	if msg.Type != want {
		return fmt.Errorf("got %q, want %q", msg.Type, want)
	}

	return nil
}
