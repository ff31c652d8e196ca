package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"time"
	"unicode"

	"github.com/berth-dev/berth/lxd/cluster"
	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/etag"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
)

// The cluster members API (issue 16): GET /1.0/cluster/members[/name], PUT/PATCH of a
// member's description and failure domain, POST rename, DELETE. Joining (POST
// /1.0/cluster/members: a token) and evacuation (.../state) are other files'.

// membership is what these handlers need of the cluster service: core's
// *cluster.Service (d.cluster) is it; handler tests put a fake in d.membership.
type membership interface {
	Enabled() bool
	Self() cluster.Member
	Members(ctx context.Context) ([]cluster.Member, error)
	Member(ctx context.Context, name string) (cluster.Member, error)
}

// selfRenamer is the part of the cluster service that keeps this member's own name
// (local.db) when it is renamed.
type selfRenamer interface {
	SetSelfName(ctx context.Context, name string) error
}

// raftRemover is the part of the cluster service that takes a member out of raft
// (through the gateway) before its row goes.
type raftRemover interface {
	RemoveRaftMember(ctx context.Context, address string) error
}

// memberSvc is the cluster service: the test fake if set, else d.cluster; nil when
// there is none (handler tests of other files).
func (d *Daemon) memberSvc() membership {
	if d.membership != nil {
		return d.membership
	}

	if d.cluster != nil {
		return d.cluster
	}

	return nil
}

// clustered reports whether this host is a member of a cluster.
func (d *Daemon) clustered() bool {
	svc := d.memberSvc()
	return svc != nil && svc.Enabled()
}

// selfMemberID is this host's member id: 1 on a host never clustered.
func (d *Daemon) selfMemberID() int64 {
	if !d.clustered() {
		return db.SelfMemberID
	}

	return d.memberSvc().Self().ID
}

// members lists the members as they are now (a host never clustered: itself, "none").
func (d *Daemon) members(ctx context.Context) ([]cluster.Member, error) {
	svc := d.memberSvc()
	if svc == nil {
		return []cluster.Member{unclusteredSelf()}, nil
	}

	return svc.Members(ctx)
}

// member returns one member, 404 naming it when there is none.
func (d *Daemon) member(ctx context.Context, name string) (cluster.Member, error) {
	svc := d.memberSvc()
	if svc == nil {
		if name == cluster.NoneName {
			return unclusteredSelf(), nil
		}

		return cluster.Member{}, api.StatusErrorf(http.StatusNotFound, "cluster member %q not found", name)
	}

	return svc.Member(ctx, name)
}

func unclusteredSelf() cluster.Member {
	return cluster.Member{ID: db.SelfMemberID, Name: cluster.NoneName, Online: true, FailureDomain: "default", Roles: []string{}}
}

// renderMember is a member as LXD 5.0 shows it.
func renderMember(m cluster.Member, now time.Time) api.ClusterMember {
	out := api.ClusterMember{
		ClusterMemberPut: api.ClusterMemberPut{
			Roles:         m.Roles,
			FailureDomain: m.FailureDomain,
			Description:   m.Description,
			Config:        map[string]string{},
			Groups:        []string{},
		},
		ServerName:   m.Name,
		Database:     m.Database(),
		Status:       m.Status(),
		Architecture: m.Arch,
	}

	if out.Roles == nil {
		out.Roles = []string{}
	}

	if m.Address != "" {
		out.URL = "https://" + m.Address
	}

	if out.Architecture == "" {
		out.Architecture = archName() // the "none" row of a host never clustered
	}

	switch out.Status {
	case "Online":
		out.Message = "Fully operational"
	case "Evacuated":
		out.Message = "Unavailable due to maintenance"
	default:
		if m.Heartbeat.IsZero() {
			out.Message = "No heartbeat yet"
		} else {
			out.Message = fmt.Sprintf("No heartbeat for %s (%s)", now.Sub(m.Heartbeat).Round(time.Second), m.Heartbeat.UTC().Format(time.RFC3339))
		}
	}

	return out
}

// memberETag covers what PUT writes (and the read-only roles a PUT must send back).
func memberETag(m api.ClusterMember) any {
	return []any{m.Description, m.FailureDomain, m.Roles, m.Groups}
}

func memberURL(name string) string { return "/1.0/cluster/members/" + url.PathEscape(name) }

// GET /1.0/cluster/members
func clusterMembersGet(d *Daemon, r *http.Request) response.Response {
	ms, err := d.members(r.Context())
	if err != nil {
		return response.SmartError(err)
	}

	if recursion(r) >= 1 {
		now := time.Now()
		out := make([]api.ClusterMember, 0, len(ms))
		for _, m := range ms {
			out = append(out, renderMember(m, now))
		}

		err = d.withGroups(r.Context(), out) // cluster_groups.go
		if err != nil {
			return response.SmartError(err)
		}

		return response.SyncResponse(true, out)
	}

	urls := make([]string, 0, len(ms))
	for _, m := range ms {
		urls = append(urls, memberURL(m.Name))
	}

	return response.SyncResponse(true, urls)
}

// GET /1.0/cluster/members/{name}
func clusterMemberGet(d *Daemon, r *http.Request) response.Response {
	m, err := d.member(r.Context(), pathVar(r, "name"))
	if err != nil {
		return response.SmartError(err)
	}

	out := []api.ClusterMember{renderMember(m, time.Now())}
	err = d.withGroups(r.Context(), out)
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponseETag(true, out[0], memberETag(out[0]))
}

// PUT /1.0/cluster/members/{name}: description and failure domain. Roles are read only
// (the database roles follow raft): a PUT may send them back unchanged, or none.
func clusterMemberPut(d *Daemon, r *http.Request) response.Response {
	return d.updateMember(r, false)
}

// PATCH /1.0/cluster/members/{name}: as PUT, keeping what the body leaves out.
func clusterMemberPatch(d *Daemon, r *http.Request) response.Response {
	return d.updateMember(r, true)
}

// maxMemberDescription bounds a member's description.
const maxMemberDescription = 4096

func (d *Daemon) updateMember(r *http.Request, patch bool) response.Response {
	if !d.clustered() {
		return response.SmartError(errNotClustered)
	}

	ctx := r.Context()
	name := pathVar(r, "name")
	m, err := d.member(ctx, name)
	if err != nil {
		return response.SmartError(err)
	}

	render := []api.ClusterMember{renderMember(m, time.Now())}
	err = d.withGroups(ctx, render)
	if err != nil {
		return response.SmartError(err)
	}

	cur := render[0]
	err = etag.Check(r, memberETag(cur))
	if err != nil {
		return response.SmartError(err)
	}

	req := api.ClusterMemberPut{}
	if patch {
		req = cur.Writable()
	}

	err = decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	err = validMemberPut(req, cur)
	if err != nil {
		return response.BadRequest(err)
	}

	err = d.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		err := tx.UpdateMember(ctx, name, req.Description, req.FailureDomain)
		if err != nil || req.Groups == nil || (len(req.Groups) > 0 && sameSet(req.Groups, cur.Groups)) {
			return err // no groups sent (an older client): they stay
		}

		return tx.SetMemberGroups(ctx, name, req.Groups)
	})
	if err != nil {
		return response.SmartError(err)
	}

	d.events.SendLifecycle("default", "cluster-member-updated", memberURL(name), nil)
	return response.EmptySyncResponse
}

// validMemberPut checks a member's new writable part against what it is now.
func validMemberPut(req api.ClusterMemberPut, cur api.ClusterMember) error {
	if len(req.Description) > maxMemberDescription {
		return fmt.Errorf("description is longer than %d bytes", maxMemberDescription)
	}

	if req.FailureDomain != "" {
		err := validFailureDomain(req.FailureDomain)
		if err != nil {
			return err
		}
	}

	if req.Roles != nil && !sameSet(req.Roles, cur.Roles) {
		return fmt.Errorf("roles are read only: the database roles follow raft (have %v, asked for %v)", cur.Roles, req.Roles)
	}

	if len(req.Config) > 0 {
		return fmt.Errorf("cluster member config is not supported (got %d keys)", len(req.Config))
	}

	if len(req.Groups) > maxGroupMembers {
		return fmt.Errorf("a cluster member is in at most %d groups (got %d)", maxGroupMembers, len(req.Groups))
	}

	return nil
}

// validFailureDomain: a short printable name (LXD takes any; Berth bounds it).
func validFailureDomain(v string) error {
	if len(v) > 64 {
		return fmt.Errorf("failure domain %q is longer than 64 bytes", v)
	}

	for _, c := range v {
		if !unicode.IsPrint(c) || c == '/' {
			return fmt.Errorf("failure domain %q has a character that is not allowed (%q)", v, c)
		}
	}

	return nil
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// memberNameRE is a valid member name: a host name label (LXD's server names are host
// names); "none" is the name of an unclustered host and is not taken.
var memberNameRE = regexp.MustCompile(`^[a-zA-Z0-9]([a-zA-Z0-9-]{0,61}[a-zA-Z0-9])?$`)

// validMemberName checks a new member name.
func validMemberName(name string) error {
	if !memberNameRE.MatchString(name) {
		return fmt.Errorf("cluster member name %q is not valid: use letters, digits and dashes, at most 63", name)
	}

	if name == "none" {
		return fmt.Errorf("cluster member name %q is reserved", name)
	}

	return nil
}

// errNotClustered answers what only a cluster can do.
var errNotClustered = api.StatusErrorf(http.StatusBadRequest, "this server is not clustered")

// POST /1.0/cluster/members/{name}: rename. Only the name changes: instances follow by
// id, so their location shows the new name.
func clusterMemberPost(d *Daemon, r *http.Request) response.Response {
	if !d.clustered() {
		return response.SmartError(errNotClustered)
	}

	req := api.ClusterMemberPost{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	err = validMemberName(req.ServerName)
	if err != nil {
		return response.BadRequest(err)
	}

	old := pathVar(r, "name")
	err = d.db.Transaction(r.Context(), func(ctx context.Context, tx *db.Tx) error {
		return tx.RenameMember(ctx, old, req.ServerName)
	})
	if err != nil {
		return response.SmartError(err)
	}

	// This member's own name is also in its local.db (Self): it follows. Another
	// member renamed here reads its new name from the rows by id.
	if old == d.memberSvc().Self().Name {
		sr, ok := d.memberSvc().(selfRenamer)
		if !ok {
			// TODO(issue 16): core's Service keeps Self's name in local.db; until it has
			// SetSelfName, Self() shows the old name until the next start.
			d.log.Warn("this member was renamed; its local record keeps the old name", "old", old, "new", req.ServerName)
		} else {
			err = sr.SetSelfName(r.Context(), req.ServerName)
			if err != nil {
				return response.SmartError(fmt.Errorf("recording this member's new name: %w", err))
			}
		}
	}

	d.events.SendLifecycle("default", "cluster-member-renamed", memberURL(req.ServerName), map[string]any{"old_name": old})
	return response.SyncResponseLocation(true, nil, memberURL(req.ServerName))
}

// DELETE /1.0/cluster/members/{name}[?force=1]: remove a member. Refused (400) while it
// has instances unless force, which deletes their rows with it (a member gone for
// good). Its raft node is removed first; with force a raft error does not stop the
// removal. A member does not remove itself here. Without force the removed member is
// told to leave and resets itself to a standalone server (cluster_leave.go), so it
// must be online; with force it is not contacted, as in LXD.
func clusterMemberDelete(d *Daemon, r *http.Request) response.Response {
	if !d.clustered() {
		return response.SmartError(errNotClustered)
	}

	ctx := r.Context()
	force := isTrueParam(r.FormValue("force"))
	m, err := d.member(ctx, pathVar(r, "name"))
	if err != nil {
		return response.SmartError(err)
	}

	if m.ID == d.selfMemberID() {
		return response.BadRequest(fmt.Errorf("cluster member %q is this server: remove it through another member", m.Name))
	}

	if !force {
		err = d.memberEmpty(ctx, m)
		if err != nil {
			return response.SmartError(err)
		}

		if !m.Online && d.tellsRemoved() {
			return response.SmartError(api.StatusErrorf(http.StatusServiceUnavailable,
				"cluster member %q is offline: it cannot be told to leave the cluster (remove it with force)", m.Name))
		}
	}

	err = d.removeRaftMember(ctx, m)
	if err != nil && !force {
		return response.SmartError(fmt.Errorf("removing cluster member %q from the database cluster: %w", m.Name, err))
	}

	if err != nil {
		d.log.Warn("forced removal of a cluster member: its raft node stays", "member", m.Name, "err", err)
	}

	err = d.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		return tx.DeleteMember(ctx, m.Name, force)
	})
	if err != nil {
		return response.SmartError(err)
	}

	d.events.SendLifecycle("default", "cluster-member-removed", memberURL(m.Name), nil)
	if !force && d.tellsRemoved() && m.Address != "" {
		err = d.tellRemoved(ctx, m.Address)
		if err != nil {
			return response.SmartError(fmt.Errorf("cluster member %q was removed, but telling it to leave the cluster failed: %w", m.Name, err))
		}
	}

	return response.EmptySyncResponse
}

// memberEmpty refuses (400, with the count) a member that still has instances, before
// raft is touched.
func (d *Daemon) memberEmpty(ctx context.Context, m cluster.Member) error {
	var n int
	err := d.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		counts, err := tx.GetMemberInstanceCounts(ctx)
		n = counts[m.ID]
		return err
	})
	if err != nil {
		return err
	}

	if n > 0 {
		return api.StatusErrorf(http.StatusBadRequest, "cluster member %q still has %d instances (move or delete them, or force)", m.Name, n)
	}

	return nil
}

// removeRaftMember takes the member's node out of raft through the gateway.
func (d *Daemon) removeRaftMember(ctx context.Context, m cluster.Member) error {
	if m.Address == "" {
		return nil
	}

	rr, ok := d.memberSvc().(raftRemover)
	if !ok {
		// A test seam without a database node: only the member's row goes.
		d.log.Warn("no raft removal available: only the member's row is removed", "member", m.Name)
		return nil
	}

	return rr.RemoveRaftMember(ctx, m.Address)
}

// isTrueParam is a query flag as LXD reads them ("1", "true").
func isTrueParam(v string) bool {
	v = strings.ToLower(v)
	return v == "1" || v == "true" || v == "yes" || v == "on"
}
