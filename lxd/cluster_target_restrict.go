package main

import (
	"net/http"

	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/validate"
)

// createTargetAllowed applies LXD's restricted.cluster.target (blocked in a restricted
// project, and Berth does not let a project relax it) to a create: a client that is not
// an administrator (a restricted certificate) may not name the member, or the cluster
// group, its project's new instance goes to; placement chooses. It runs on the member the
// client reached, before placement rewrites ?target= and forwards (a relayed create
// carries the chosen member as its target, so the member making it cannot tell).
// Moves check the same in clusterMove (moveTargetAllowed).
func (d *Daemon) createTargetAllowed(r *http.Request) error {
	if r.URL.Query().Get("target") == "" || d.projects == nil || callerOf(r).Admin() {
		return nil
	}

	proj := projectOf(r)
	cfg, err := d.projects.Config(r.Context(), proj)
	if err != nil || !validate.IsTrue(cfg["restricted"]) {
		return nil //nolint:nilerr // an unknown project is the create's own 404
	}

	return api.StatusErrorf(http.StatusForbidden, "project %q is restricted: its instances cannot be placed on a named cluster member or group", proj)
}
