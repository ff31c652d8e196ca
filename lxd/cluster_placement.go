package main

import (
	"context"
	"net/http"

	"github.com/berth-dev/berth/lxd/cluster"
	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/api"
)

// placeInstance is the member a new instance goes to (issue 16): the one ?target= names
// (404 naming it when there is none, 503 when it is offline, 400 when evacuated), else
// the placement's choice (cluster.Place: the fewest instances among the online members
// not evacuated) among all members or, for ?target=@group, among that group's (404
// naming an unknown group). On a host never clustered it is this host; a target there is a 400,
// as LXD answers.
//
// Forwarding (cluster_forward.go) sends a create for another member there; the create
// that reaches this member's own handler checks its target with this too.
func (d *Daemon) placeInstance(ctx context.Context, target string) (cluster.Member, error) {
	if !d.clustered() {
		if target != "" && target != cluster.NoneName {
			return cluster.Member{}, api.StatusErrorf(http.StatusBadRequest, "target %q: this server is not clustered", target)
		}

		ms, err := d.members(ctx)
		if err != nil {
			return cluster.Member{}, err
		}

		return ms[0], nil
	}

	ms, err := d.members(ctx)
	if err != nil {
		return cluster.Member{}, err
	}

	group, byGroup := targetGroup(target)
	if target != "" && !byGroup {
		return cluster.Target(ms, target)
	}

	if byGroup {
		// ?target=@group: placement among that group's members only (cluster_groups.go).
		ms, err = d.inGroup(ctx, ms, group)
		if err != nil {
			return cluster.Member{}, err
		}
	}

	var counts map[int64]int
	err = d.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		counts, err = tx.GetMemberInstanceCounts(ctx)
		return err
	})
	if err != nil {
		return cluster.Member{}, err
	}

	m, err := cluster.Place(ms, counts)
	if err != nil && byGroup {
		return m, api.StatusErrorf(api.StatusCodeOf(err), "cluster group %q: %v", group, err)
	}

	return m, err
}

// localTarget checks a create's ?target= on the member that makes the instance: it must
// name a member that can take it (placeInstance), and that member must be this one (a
// create for another member is forwarded there before it reaches the handler; without
// forwarding it cannot be made here).
func (d *Daemon) localTarget(r *http.Request) error {
	target := r.URL.Query().Get("target")
	if target == "" {
		return nil
	}

	m, err := d.placeInstance(r.Context(), target)
	if err != nil {
		return err
	}

	if d.clustered() && m.ID != d.selfMemberID() {
		return api.StatusErrorf(http.StatusServiceUnavailable, "instance for cluster member %q: it cannot be created through this member", m.Name)
	}

	return nil
}

// placeMemberName is placeInstance as forwarding takes it: the name of the member a
// create goes to.
func (d *Daemon) placeMemberName(ctx context.Context, target string) (string, error) {
	m, err := d.placeInstance(ctx, target)
	return m.Name, err
}
