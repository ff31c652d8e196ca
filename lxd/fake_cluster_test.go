package main

import (
	"context"
	"net/http"
	"sync"
	"time"

	"github.com/berth-dev/berth/lxd/cluster"
	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/api"
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
	db    *db.DB
	self  cluster.Member
	roles map[string][]string

	mu        sync.Mutex
	removed   []string // addresses RemoveRaftMember was called with
	removeErr error
}

func (f *fakeMembership) Enabled() bool { return true }

func (f *fakeMembership) Self() cluster.Member {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.self
}

func (f *fakeMembership) SetSelfName(_ context.Context, name string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.self.Name = name
	return nil
}

// Members reads the rows as the Service does: online when it is this member or its
// heartbeat is within the default threshold.
func (f *fakeMembership) Members(ctx context.Context) ([]cluster.Member, error) {
	var rows []db.MemberRow
	err := f.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		rows, err = tx.ClusterMembers(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}

	out := []cluster.Member{}
	for _, r := range rows {
		roles := f.roles[r.Address]
		if roles == nil {
			roles = []string{}
		}

		out = append(out, cluster.Member{
			ID: r.ID, Name: r.Name, Address: r.Address, Description: r.Description, Arch: r.Arch,
			FailureDomain: r.FailureDomain, Roles: roles, Evacuated: r.Evacuated, Heartbeat: r.Heartbeat,
			Online: r.ID == f.Self().ID || time.Since(r.Heartbeat) <= cluster.DefaultOfflineThreshold,
		})
	}

	return out, nil
}

func (f *fakeMembership) Member(ctx context.Context, name string) (cluster.Member, error) {
	ms, err := f.Members(ctx)
	if err != nil {
		return cluster.Member{}, err
	}

	for _, m := range ms {
		if m.Name == name {
			return m, nil
		}
	}

	return cluster.Member{}, api.StatusErrorf(http.StatusNotFound, "cluster member %q not found", name)
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
				roles[m.Address] = []string{cluster.RoleDatabase, cluster.RoleDatabaseLeader}
			case i < 3:
				roles[m.Address] = []string{cluster.RoleDatabase}
			default:
				roles[m.Address] = []string{cluster.RoleDatabaseStandby}
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

				err = tx.ClusterMemberSetIdentity(ctx, db.MemberRow{ID: db.SelfMemberID, Name: m.Name, Address: m.Address, Arch: "x86_64"})
				if err != nil {
					return err
				}

				self = cluster.Member{ID: db.SelfMemberID, Name: m.Name, Address: m.Address, Online: true}
			} else {
				_, err := tx.ClusterMemberAdd(ctx, db.MemberRow{Name: m.Name, Address: m.Address, Arch: "x86_64", Heartbeat: beat})
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

	d.membership = &fakeMembership{db: d.db, self: self, roles: roles}
	return nil
}
