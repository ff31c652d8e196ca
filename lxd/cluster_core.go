package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/berth-dev/berth/lxd/cluster"
	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/listener"
	"github.com/berth-dev/berth/lxd/operations"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/expiry"
)

// The membership core's API (issue 16): GET/PUT /1.0/cluster (enable, join), the join
// token operation of POST /1.0/cluster/members, and the member's side of a join,
// POST /internal/cluster/accept.

// Cluster configuration keys (server config: what enable and tokens read).
const (
	keyClusterAddress     = "cluster.https_address"
	keyClusterTokenExpiry = "cluster.join_token_expiry"
)

func init() {
	serverKeys[keyClusterAddress] = validAddress
	serverKeys[keyClusterTokenExpiry] = func(v string) error {
		_, err := expiry.After(time.Now(), v)
		return err
	}
}

// restartGrace is how long after a clustering operation's success the daemon waits
// before it re-execs: long enough for the client to fetch the result.
const restartGrace = time.Second

// levels is what this daemon's software is, as members record and compare it.
func levels() cluster.Levels {
	return cluster.Levels{SchemaVersion: db.SchemaVersion(), APIExtensions: len(apiExtensions), Arch: archName()}
}

// GET /1.0/cluster
func clusterGet(d *Daemon, r *http.Request) response.Response {
	out := api.Cluster{MemberConfig: []api.ClusterMemberConfigKey{}}
	if d.cluster.Enabled() {
		out.ServerName, out.Enabled = d.cluster.Self().Name, true
	}

	return response.SyncResponseETag(true, out, out)
}

// PUT /1.0/cluster: enable clustering on this host (server_name alone, as `lxc cluster
// enable NAME` sends it) or join a cluster with a token (cluster_token, as `lxd init
// --preseed` and `berth cluster join` send it). Either answers with an operation; once
// it succeeds the daemon re-execs itself to start clustered.
func clusterPut(d *Daemon, r *http.Request) response.Response {
	req := api.ClusterPut{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	if !req.Enabled {
		if d.cluster.Enabled() {
			return clusterLeave(d, r) // from the member removing this one: cluster_leave.go
		}

		return response.BadRequest(errors.New("this server is not clustered"))
	}

	if d.cluster.Enabled() {
		return response.BadRequest(errors.New("this server is already clustered"))
	}

	if req.ServerName == "" {
		return response.BadRequest(errors.New("server_name is required"))
	}

	tokenInPassword(&req) // as lxd init --preseed sends a token (preseed_join.go)
	if req.ClusterToken == "" && (req.ClusterAddress != "" || req.ClusterPassword != "") {
		return response.BadRequest(errors.New("joining with a cluster address and password is not supported: use a join token (cluster_token)"))
	}

	if req.ClusterToken != "" {
		return clusterJoin(d, req)
	}

	return clusterEnable(d, req)
}

// memberAddress is the address this host becomes a member at: server_address, else
// cluster.https_address, else core.https_address. It must name a host others can
// reach, not a wildcard.
func (d *Daemon) memberAddress(given string) (string, error) {
	cfg := d.serverConfig()
	addr := given
	for _, a := range []string{cfg[keyClusterAddress], cfg[keyHTTPSAddress]} {
		if addr == "" {
			addr = a
		}
	}

	if addr == "" {
		return "", api.StatusErrorf(http.StatusBadRequest, "clustering needs a network address: set core.https_address (or cluster.https_address) first")
	}

	canon, err := listener.Canonical(addr, listener.DefaultPort)
	if err != nil {
		return "", api.StatusErrorf(http.StatusBadRequest, "cluster address %q: %v", addr, err)
	}

	host, _, err := net.SplitHostPort(canon)
	if err != nil {
		return "", api.StatusErrorf(http.StatusBadRequest, "cluster address %q: %v", addr, err)
	}

	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		return "", api.StatusErrorf(http.StatusBadRequest,
			"cluster address %q is a wildcard: set cluster.https_address to an address the other members can reach", canon)
	}

	return canon, nil
}

func clusterEnable(d *Daemon, req api.ClusterPut) response.Response {
	addr, err := d.memberAddress("")
	if err != nil {
		return response.SmartError(err)
	}

	err = cluster.ValidMemberName(req.ServerName)
	if err != nil {
		return response.BadRequest(err)
	}

	run := func(ctx context.Context, op *operations.Operation) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute) // a node that cannot start fails the enable
		defer cancel()
		return d.cluster.Enable(ctx, cluster.EnableRequest{
			Name: req.ServerName, Address: addr, Levels: levels(), FileDB: d.db,
		})
	}

	return d.clusterOperation("Enabling clustering", run)
}

func clusterJoin(d *Daemon, req api.ClusterPut) response.Response {
	tok, err := cluster.DecodeToken(req.ClusterToken)
	if err != nil {
		return response.BadRequest(err)
	}

	addr, err := d.memberAddress(req.ServerAddress)
	if err != nil {
		return response.SmartError(err)
	}

	// Refused at once, before any operation; checked again by Join.
	err = d.freshForJoin(context.Background())
	if err != nil {
		return response.SmartError(err)
	}

	run := func(ctx context.Context, op *operations.Operation) error {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
		defer cancel()
		return d.cluster.Join(ctx, cluster.JoinRequest{
			Name: req.ServerName, Address: addr, Token: tok, Levels: levels(), FileDB: d.db, Fresh: d.freshForJoin,
		})
	}

	return d.clusterOperation("Joining cluster", run)
}

// clusterOperation runs an enable or join as an operation and, once it has succeeded
// and the client had time to see it, restarts the daemon.
func (d *Daemon) clusterOperation(desc string, run operations.RunFunc) response.Response {
	op, err := d.ops.Create(api.OperationClassTask, desc, nil, nil, run, nil, nil)
	if err != nil {
		return response.InternalError(err)
	}

	err = op.Start()
	if err != nil {
		return response.InternalError(err)
	}

	go func() {
		<-op.Done()
		if op.Status() != api.Success {
			return
		}

		time.Sleep(restartGrace)
		d.requestRestart()
	}()

	return response.OperationResponse(op)
}

// freshForJoin refuses a joiner that has instances or custom volumes: the cluster's
// inventory replaces its own.
func (d *Daemon) freshForJoin(ctx context.Context) error {
	var insts []db.Instance
	var vols []db.StorageVolume
	err := d.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		insts, err = tx.GetInstances(ctx)
		if err != nil {
			return err
		}

		vols, err = tx.GetStorageVolumes(ctx, nil)
		return err
	})
	if err != nil {
		return err
	}

	if len(insts) > 0 || len(vols) > 0 {
		return api.StatusErrorf(http.StatusBadRequest,
			"only a fresh server can join a cluster: this one has %d instances and %d custom volumes", len(insts), len(vols))
	}

	return nil
}

// POST /1.0/cluster/members: a join token for a new member, as a token operation
// (`lxc cluster add NAME` prints it). Asking again for a name replaces its token.
func clusterMembersPost(d *Daemon, r *http.Request) response.Response {
	req := api.ClusterMembersPost{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	if !d.cluster.Enabled() {
		return response.BadRequest(errors.New("this server is not clustered: enable clustering first"))
	}

	v := d.serverConfig()[keyClusterTokenExpiry]
	if v == "" {
		v = cluster.DefaultTokenExpiry
	}

	expiresAt, err := expiry.After(time.Now(), v)
	if err != nil {
		return response.InternalError(err)
	}

	// Earlier operations of this name's token end: the database has the new one only.
	d.endTokenOps(func(md map[string]any) bool { return md["serverName"] == req.ServerName })
	tok, err := d.cluster.IssueToken(r.Context(), req.ServerName, expiresAt)
	if err != nil {
		return response.SmartError(err)
	}

	op, err := d.tokenOperation(tok)
	if err != nil {
		return response.SmartError(err)
	}

	return response.OperationResponse(op)
}

// POST /internal/cluster/accept: a joiner with a token's secret asks to become a
// member. Authenticated by the secret alone (the joiner has no trusted certificate yet).
func internalClusterAccept(d *Daemon, r *http.Request) response.Response {
	req := cluster.AcceptRequest{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	out, err := d.cluster.Accept(r.Context(), req, levels())
	if err != nil {
		// Anyone may call this: a refusal goes to the audit's log, rate-limited per
		// source and without the caller's strings (which may be as long as its body).
		code := api.StatusCodeOf(err)
		if code >= 400 && code < 500 {
			d.audit.Refused(callerOf(r), r, fmt.Sprintf("cluster join refused (%d)", code))
		} else {
			d.log.Warn("cluster join failed", "err", err)
		}

		return response.SmartError(err)
	}

	d.endTokenOps(func(md map[string]any) bool { return md["serverName"] == req.Name })
	d.log.Info("cluster member accepted", "name", req.Name, "address", req.Address, "id", out.MemberID)
	return response.SyncResponse(true, out)
}
