package network

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/lxd/firewall"
	"github.com/berth-dev/berth/lxd/ip"
)

// A rename moves a network's state directory, bridge, dnsmasq configuration and nftables
// tables to the new name. It runs in three steps so that a crash at any point leaves
// either the old network or the new one (the caller keeps a journal around its database
// commit, lxd/networks):
//
//  1. StopForRename: dnsmasq stopped (its leases written out), tables removed, network
//     forgotten; the bridge and files stay. A daemon restarting now brings the old
//     network back up from its database row.
//  2. the caller commits the new name in the database.
//  3. MoveFiles (idempotent: a restarted daemon runs it again from the journal) moves the
//     directory and renames the bridge, whose alias then names the new directory; Load
//     under the new name writes dnsmasq's configuration and the tables again.

// renamer is what a network driver does for a rename.
type renamer interface {
	stopForRename() error
}

// StopForRename stops the running parts of a network and forgets it (step 1).
func (m *Manager) StopForRename(name string) error {
	n, err := m.Get(name)
	if err != nil {
		return err
	}

	r, ok := n.(renamer)
	if !ok {
		return fmt.Errorf("network %q cannot be renamed", name)
	}

	err = r.stopForRename()
	if err != nil {
		return err
	}

	m.mu.Lock()
	delete(m.nets, name)
	m.mu.Unlock()
	return nil
}

// stopForRename stops dnsmasq and removes the firewall tables.
func (b *bridge) stopForRename() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.dns.stop()
	return firewall.Remove(b.name)
}

// MoveFiles moves a network's state directory from its old name to the new one and renames
// its bridge (step 3); what is already moved is left as it is.
func (m *Manager) MoveFiles(from, to string) error {
	oldDir, newDir := filepath.Join(m.dir, from), filepath.Join(m.dir, to)
	// What step 1 stopped, in case a daemon stopped in between left it running: the
	// dnsmasq of the old configuration (if the pid file still names it) and the tables.
	newDnsmasq(oldDir, m.log).stop()
	err := firewall.Remove(from)
	if err != nil {
		return err
	}

	_, err = os.Stat(oldDir)
	if err == nil {
		_, err = os.Stat(newDir)
		if err == nil {
			return fmt.Errorf("renaming network %q: %s exists", from, newDir)
		}

		err = os.Rename(oldDir, newDir)
		if err != nil {
			return fmt.Errorf("renaming network %q: %w", from, err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("renaming network %q: %w", from, err)
	}

	// Only our own bridge moves: its alias names the old (or, after a crash, already the
	// new) state directory.
	_, dir, ok := parseAlias(ip.LinkAlias(from))
	if ip.LinkExists(from) && ok && (dir == oldDir || dir == newDir) && !ip.LinkExists(to) {
		// The dnsmasq pid in the alias is stale (it was stopped): 0 until the new one starts.
		return ip.LinkRename(from, to, makeAlias(0, newDir))
	}

	return nil
}
