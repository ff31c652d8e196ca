package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
)

// A removed member is told to leave (issue 16), as LXD does it: the member that removes
// it (DELETE /1.0/cluster/members/{name} without force) sends the removed member
// PUT /1.0/cluster with enabled false over member-to-member TLS, and the removed member
// resets itself to a standalone server (lxd/cluster/leave.go) instead of running on as
// a ghost holding the cluster key. With force (a member gone for good) it is not
// contacted, as in LXD.

// leaveTimeout bounds telling a removed member to leave.
const leaveTimeout = 10 * time.Second

// clusterLeave is PUT /1.0/cluster with enabled false, from the member that removed
// this one: it records the reset and restarts the daemon. A client other than a member
// is refused (the cluster would keep a member that no longer follows it), and so is a
// member while this one's row is still in the cluster.
func clusterLeave(d *Daemon, r *http.Request) response.Response {
	if !callerOf(r).Member {
		return response.BadRequest(errors.New("leaving a cluster this way is not supported: remove the member with DELETE /1.0/cluster/members/{name}"))
	}

	self := d.cluster.Self()
	ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
	defer cancel()
	var still bool
	err := d.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		_, err := tx.GetMemberByID(ctx, self.ID)
		still = err == nil
		return nil
	})
	if err == nil && still {
		return response.SmartError(api.StatusErrorf(http.StatusConflict,
			"cluster member %q is still in the cluster: it leaves when removed with DELETE /1.0/cluster/members/%s", self.Name, self.Name))
	}

	err = d.cluster.Leave(r.Context())
	if err != nil {
		return response.SmartError(fmt.Errorf("leaving the cluster: %w", err))
	}

	d.log.Warn("removed from the cluster: restarting as a standalone server", "member", self.Name, "by", callerOf(r).String())
	go func() {
		time.Sleep(restartGrace) // the remover gets its answer first
		d.requestRestart()
	}()

	return response.EmptySyncResponse
}

// tellsRemoved reports whether removals here can tell the removed member (the cluster
// service runs: not under a handler test's fake).
func (d *Daemon) tellsRemoved() bool {
	return d.membership == nil && d.cluster != nil && d.cluster.Enabled()
}

// tellRemoved asks the removed member at address to leave (PUT /1.0/cluster, enabled
// false).
func (d *Daemon) tellRemoved(ctx context.Context, address string) error {
	return d.memberSend(ctx, address, http.MethodPut, "/1.0/cluster", api.ClusterPut{Cluster: api.Cluster{Enabled: false}}, leaveTimeout)
}

// memberSend sends one JSON request to the member at address over member-to-member
// TLS (the cluster certificate presented and pinned) and returns its refusal, if any.
func (d *Daemon) memberSend(ctx context.Context, address, method, path string, body any, timeout time.Duration) error {
	tlsConfig := d.cluster.ClientTLS()
	if tlsConfig == nil {
		return errors.New("not clustered")
	}

	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}

	req, err := http.NewRequestWithContext(ctx, method, "https://"+address+path, bytes.NewReader(data))
	if err != nil {
		return err
	}

	req.Header.Set("Content-Type", "application/json")
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig, DisableKeepAlives: true}}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}

	defer func() { _ = resp.Body.Close() }()
	reply, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode != http.StatusOK {
		var env api.Response
		_ = json.Unmarshal(reply, &env)
		return api.StatusErrorf(resp.StatusCode, "%s", env.Error)
	}

	return nil
}
