package main

import (
	"context"
	"sync"
	"time"

	"github.com/berth-dev/berth/lxd/cluster"
	"github.com/berth-dev/berth/lxd/db"
)

// A fake daemon may be a member of a fake cluster (fakeConfig.Cluster): the members
// are rows of its database, the first one is itself, and fakeMembership stands for the
// cluster service (roles from a map, raft removals recorded).

// fakeMember seeds one member of a fake cluster.
type fakeMember struct {
	Name      string `json:"name"`
	Address   string `json:"address"`
	Offline   bool   `json:"offline"` // last heartbeat a minute ago
	Evacuated bool   `json:"evacuated"`
}

type fakeMembership struct {
	self  cluster.Member
	roles map[string][]string

	mu        sync.Mutex
	removed   []string // addresses RemoveRaftMember was called with
	removeErr error
}

func (f *fakeMembership) Enabled() bool        { return true }
func (f *fakeMembership) Self() cluster.Member { return f.self }

func (f *fakeMembership) DatabaseRoles(context.Context) (map[string][]string, error) {
	return f.roles, nil
}

func (f *fakeMembership) RemoveRaftMember(_ context.Context, address string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.removed = append(f.removed, address)
	return f.removeErr
}

// seedFakeCluster makes d a member of cfg.Cluster (nothing when it is empty): row 1 is
// renamed to the first member, the others are inserted; the first is the raft leader,
// the next two voters, the rest stand-bys.
func seedFakeCluster(ctx context.Context, d *Daemon, cfg fakeConfig) error {
	if len(cfg.Cluster) == 0 {
		return nil
	}

	roles := map[string][]string{}
	var self cluster.Member
	err := d.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		for i, m := range cfg.Cluster {
			switch {
			case i == 0:
				roles[m.Address] = cluster.DatabaseRoles("voter", true)
			case i < 3:
				roles[m.Address] = cluster.DatabaseRoles("voter", false)
			default:
				roles[m.Address] = cluster.DatabaseRoles("standby", false)
			}

			beat := time.Now()
			if m.Offline {
				beat = beat.Add(-time.Minute)
			}

			if i == 0 {
				err := tx.RenameMember(ctx, "none", m.Name)
				if err != nil {
					return err
				}

				err = tx.SetMemberAddress(ctx, m.Name, m.Address)
				if err != nil {
					return err
				}

				self = cluster.Member{ID: db.SelfMemberID, Name: m.Name, Address: m.Address, Online: true}
			} else {
				_, err := tx.CreateMember(ctx, db.Member{Name: m.Name, Address: m.Address, Arch: "x86_64", Heartbeat: beat})
				if err != nil {
					return err
				}
			}

			if m.Evacuated {
				err := tx.SetMemberEvacuated(ctx, m.Name, true)
				if err != nil {
					return err
				}
			}
		}

		return nil
	})
	if err != nil {
		return err
	}

	d.membership = &fakeMembership{self: self, roles: roles}
	return nil
}
