package main

import (
	"net/http"

	"github.com/berth-dev/berth/lxd/cluster"
	"github.com/berth-dev/berth/lxd/cluster/forward"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
)

// Where evacuation meets the other parts of issue 16: the membership service and
// forwarding.

// evacuationCluster is the membership service (d.cluster, or the handler tests' fake),
// nil when there is none.
func (d *Daemon) evacuationCluster() evacuationCluster {
	m := d.memberSvc()
	if m == nil {
		return nil
	}

	return m
}

// forwardMemberState relays an evacuate/restore request, body unread, to the member it
// names: that member stops or starts its own containers. A request relayed once is not
// relayed again.
func (d *Daemon) forwardMemberState(r *http.Request, m cluster.Member) response.Response {
	cf := d.forward
	if cf == nil || forward.IsForwarded(r) {
		return response.Unavailable(api.StatusErrorf(http.StatusServiceUnavailable, "cannot reach cluster member %q to evacuate or restore it", m.Name))
	}

	fm, err := cf.member(r.Context(), m.ID, "")
	if err != nil {
		return response.SmartError(err)
	}

	caller := cf.callerHeader(callerOf(r))
	keepBody(r)
	return response.ManualResponse(func(w http.ResponseWriter) error {
		cf.fwd.Forward(w, r, *fm, caller)
		return nil
	})
}
