package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/berth-dev/berth/lxd/cluster"
	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
)

// evacuationAction is what an instance's cluster.evacuate asks of an evacuation without
// a mode (LXD 5.0's semantics): "stop" stops it, "migrate" (and "live-migrate", done
// stateless: containers are not live-migrated) moves it, "auto" (the default) moves it
// when each of its devices can go to another member, and stops it otherwise. The root
// disk moves with the instance and a NIC on a managed network finds that network on
// every member; any other device (a disk from the host or a custom volume, which are
// the member's own, a unix or GPU device, a proxy) keeps it on its member.
func evacuationAction(config map[string]string, devices map[string]map[string]string) string {
	switch config["cluster.evacuate"] {
	case evacuateStop:
		return evacuateStop
	case evacuateMigrate, evacuateLiveMigrate:
		return evacuateMigrate
	}

	for _, dev := range devices {
		switch {
		case dev["type"] == "disk" && dev["path"] == "/" && dev["source"] == "":
		case dev["type"] == "nic" && dev["network"] != "":
		case dev["type"] == "none":
		default:
			return evacuateStop
		}
	}

	return evacuateAuto
}

// Place implements evacuationHost: the member with the fewest instances among those
// online and not evacuated, member itself excluded.
func (h daemonEvacuationHost) Place(ctx context.Context, member string) (cluster.Member, error) {
	ms, err := h.d.members(ctx)
	if err != nil {
		return cluster.Member{}, err
	}

	ms = slices.DeleteFunc(ms, func(m cluster.Member) bool { return m.Name == member })
	if len(ms) == 0 {
		return cluster.Member{}, api.StatusErrorf(http.StatusBadRequest, "no other cluster member to move the instances of %q to: it is the only member", member)
	}

	var counts map[int64]int
	err = h.d.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		counts, err = tx.GetMemberInstanceCounts(ctx)
		return err
	})
	if err != nil {
		return cluster.Member{}, err
	}

	return cluster.Place(ms, counts)
}

func (h daemonEvacuationHost) Move(ctx context.Context, key string, to cluster.Member) error {
	return h.d.moveToMember(ctx, key, key, to)
}

func (h daemonEvacuationHost) StartOn(ctx context.Context, key string, on cluster.Member) error {
	proj, name := project.Split(key)
	return h.d.memberDo(ctx, on, http.MethodPut, "/1.0/instances/"+url.PathEscape(name)+"/state", url.Values{"project": {proj}},
		api.InstanceStatePut{Action: "start"})
}

func (h daemonEvacuationHost) Moved(ctx context.Context, member string) ([]movedEvacuee, error) {
	self := h.d.selfMemberID()
	var out []movedEvacuee
	err := h.d.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		origins, err := tx.GetInstanceConfigValues(ctx, keyEvacuateOrigin)
		if err != nil {
			return err
		}

		for key, origin := range origins {
			if origin != member {
				continue
			}

			id, err := tx.InstanceMember(ctx, key)
			if err != nil {
				return err
			}

			if id == self {
				continue
			}

			m, err := tx.GetMemberByID(ctx, id)
			if err != nil {
				return err
			}

			out = append(out, movedEvacuee{Key: key, Member: m.Name})
		}

		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing the instances evacuated from cluster member %q: %w", member, err)
	}

	return out, nil
}

// MoveBack asks member from to stop instance key (cleanly, else by force; one already
// stopped is fine) and to move it to member to, through the public API with the cluster
// certificate, as LXD's restore does.
func (h daemonEvacuationHost) MoveBack(ctx context.Context, key, from, to string) error {
	m, err := h.d.memberSvc().Member(ctx, from)
	if err != nil {
		return err
	}

	proj, name := project.Split(key)
	q := url.Values{"project": {proj}}
	path := "/1.0/instances/" + url.PathEscape(name)
	running, err := h.remoteRunning(ctx, m, path, q)
	if err != nil {
		return err
	}

	if running {
		err = h.d.memberDo(ctx, m, http.MethodPut, path+"/state", q, api.InstanceStatePut{Action: "stop", Timeout: 30})
		if err != nil {
			err = h.d.memberDo(ctx, m, http.MethodPut, path+"/state", q, api.InstanceStatePut{Action: "stop", Force: true})
		}

		if err != nil {
			return fmt.Errorf("stopping it: %w", err)
		}
	}

	q.Set("target", to)
	return h.d.memberDo(ctx, m, http.MethodPost, path, q, api.InstancePost{Name: name, Migration: true})
}

// remoteRunning reports whether the instance at path on member m is not stopped.
func (h daemonEvacuationHost) remoteRunning(ctx context.Context, m cluster.Member, path string, q url.Values) (bool, error) {
	res, err := h.d.memberCall(ctx, m, http.MethodGet, path+"/state", q, nil)
	if err != nil {
		return false, err
	}

	var st api.InstanceState
	err = json.Unmarshal(res.Metadata, &st)
	if err != nil {
		return false, fmt.Errorf("reading the state of the instance on cluster member %q: %w", m.Name, err)
	}

	return st.StatusCode != api.Stopped, nil
}

// memberCallTimeout bounds one member-to-member API call, operation included (a move of
// a large instance is the longest).
const memberCallTimeout = 30 * time.Minute
