package main

import (
	"net/http"

	"github.com/berth-dev/berth/lxd/cluster"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
)

// The two places evacuation meets the other parts of issue 16: the membership service
// and forwarding. Until they are merged, evacuation answers that the server is not
// clustered.

// evacuationCluster is the membership service (d.cluster), nil when there is none.
func (d *Daemon) evacuationCluster() evacuationCluster { return nil }

// forwardMemberState sends an evacuate/restore request to the member it names: the
// member stops or starts its own containers.
func (d *Daemon) forwardMemberState(_ *http.Request, m cluster.Member) response.Response {
	return response.Unavailable(api.StatusErrorf(http.StatusServiceUnavailable, "cannot forward to cluster member %q", m.Name))
}
