package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/berth-dev/berth/lxd/cluster"
	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/etag"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
)

// Cluster groups (issue 16), as LXD 5.0 serves them: GET/POST /1.0/cluster/groups,
// GET/PUT/PATCH/POST (rename)/DELETE /1.0/cluster/groups/{name}. A member's groups are
// also shown and set through the members API (cluster_members.go); placement takes
// ?target=@group (cluster_placement.go). The rows are lxd/db's (cluster_groups.go).

func init() {
	endpoints = append(endpoints,
		APIEndpoint{Path: "cluster/groups", Get: clusterGroupsGet, Post: clusterGroupsPost},
		APIEndpoint{Path: "cluster/groups/{name}", Get: clusterGroupGet, Put: clusterGroupPut, Patch: clusterGroupPatch,
			Post: clusterGroupPost, Delete: clusterGroupDelete},
	)
}

// Limits of a group.
const (
	maxGroupDescription = 4096
	maxGroupMembers     = 1024
)

// validGroupName: 1 to 63 letters, digits, '-', '_' or '.', starting with a letter or
// digit. LXD takes any API name; a name starting with '@' or holding '/' would not
// survive ?target=@name or the group's URL, so Berth bounds it.
func validGroupName(name string) error {
	if name == "" || len(name) > 63 {
		return fmt.Errorf("cluster group name %q must be 1 to 63 characters", name)
	}

	for i, c := range name {
		ok := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || (i > 0 && (c == '-' || c == '_' || c == '.'))
		if !ok {
			return fmt.Errorf("cluster group name %q: only letters, digits, '-', '_' and '.' (not first) are allowed", name)
		}
	}

	return nil
}

// validGroupPut checks a group's writable part.
func validGroupPut(req api.ClusterGroupPut) error {
	if len(req.Description) > maxGroupDescription {
		return fmt.Errorf("description is longer than %d bytes", maxGroupDescription)
	}

	if len(req.Members) > maxGroupMembers {
		return fmt.Errorf("a cluster group lists at most %d members", maxGroupMembers)
	}

	seen := map[string]bool{}
	for _, m := range req.Members {
		if seen[m] {
			return fmt.Errorf("cluster member %q is listed twice", m)
		}

		seen[m] = true
	}

	return nil
}

func groupURL(name string) string { return "/1.0/cluster/groups/" + url.PathEscape(name) }

func renderGroup(g db.ClusterGroup) api.ClusterGroup {
	members := g.Members
	if members == nil {
		members = []string{}
	}

	return api.ClusterGroup{Name: g.Name, ClusterGroupPut: api.ClusterGroupPut{Description: g.Description, Members: members}}
}

// GET /1.0/cluster/groups
func clusterGroupsGet(d *Daemon, r *http.Request) response.Response {
	if !d.clustered() {
		return response.SmartError(errNotClustered)
	}

	var gs []db.ClusterGroup
	err := d.db.ReadTransaction(r.Context(), func(ctx context.Context, tx *db.Tx) error {
		var err error
		gs, err = tx.ClusterGroups(ctx)
		return err
	})
	if err != nil {
		return response.SmartError(err)
	}

	if recursion(r) >= 1 {
		out := make([]api.ClusterGroup, 0, len(gs))
		for _, g := range gs {
			out = append(out, renderGroup(g))
		}

		return response.SyncResponse(true, out)
	}

	urls := make([]string, 0, len(gs))
	for _, g := range gs {
		urls = append(urls, groupURL(g.Name))
	}

	return response.SyncResponse(true, urls)
}

// POST /1.0/cluster/groups
func clusterGroupsPost(d *Daemon, r *http.Request) response.Response {
	if !d.clustered() {
		return response.SmartError(errNotClustered)
	}

	req := api.ClusterGroupsPost{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	err = validGroupName(req.Name)
	if err == nil {
		err = validGroupPut(req.ClusterGroupPut)
	}

	if err != nil {
		return response.BadRequest(err)
	}

	err = d.db.Transaction(r.Context(), func(ctx context.Context, tx *db.Tx) error {
		return tx.CreateClusterGroup(ctx, req.Name, req.Description, req.Members)
	})
	if err != nil {
		return response.SmartError(err)
	}

	d.events.SendLifecycle("default", "cluster-group-created", groupURL(req.Name), nil)
	return response.SyncResponseLocation(true, nil, groupURL(req.Name))
}

// group reads one group (404 naming it).
func (d *Daemon) group(ctx context.Context, name string) (api.ClusterGroup, error) {
	var g db.ClusterGroup
	err := d.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		g, err = tx.ClusterGroup(ctx, name)
		return err
	})

	return renderGroup(g), err
}

// GET /1.0/cluster/groups/{name}
func clusterGroupGet(d *Daemon, r *http.Request) response.Response {
	if !d.clustered() {
		return response.SmartError(errNotClustered)
	}

	g, err := d.group(r.Context(), pathVar(r, "name"))
	if err != nil {
		return response.SmartError(err)
	}

	return response.SyncResponseETag(true, g, g.Writable())
}

// PUT /1.0/cluster/groups/{name}: description and members. A member left out leaves
// the group only if it is in another one, as in LXD (every member is in a group).
func clusterGroupPut(d *Daemon, r *http.Request) response.Response {
	return d.updateGroup(r, false)
}

// PATCH /1.0/cluster/groups/{name}: as PUT, keeping what the body leaves out.
func clusterGroupPatch(d *Daemon, r *http.Request) response.Response {
	return d.updateGroup(r, true)
}

func (d *Daemon) updateGroup(r *http.Request, patch bool) response.Response {
	if !d.clustered() {
		return response.SmartError(errNotClustered)
	}

	name := pathVar(r, "name")
	cur, err := d.group(r.Context(), name)
	if err != nil {
		return response.SmartError(err)
	}

	err = etag.Check(r, cur.Writable())
	if err != nil {
		return response.SmartError(err)
	}

	req := api.ClusterGroupPut{}
	if patch {
		req = cur.Writable()
	}

	err = decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	err = validGroupPut(req)
	if err != nil {
		return response.BadRequest(err)
	}

	err = d.db.Transaction(r.Context(), func(ctx context.Context, tx *db.Tx) error {
		return tx.UpdateClusterGroup(ctx, name, req.Description, req.Members)
	})
	if err != nil {
		return response.SmartError(err)
	}

	d.events.SendLifecycle("default", "cluster-group-updated", groupURL(name), nil)
	return response.EmptySyncResponse
}

// POST /1.0/cluster/groups/{name}: rename ("default" cannot be).
func clusterGroupPost(d *Daemon, r *http.Request) response.Response {
	if !d.clustered() {
		return response.SmartError(errNotClustered)
	}

	req := api.ClusterGroupPost{}
	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	err = validGroupName(req.Name)
	if err != nil {
		return response.BadRequest(err)
	}

	old := pathVar(r, "name")
	err = d.db.Transaction(r.Context(), func(ctx context.Context, tx *db.Tx) error {
		return tx.RenameClusterGroup(ctx, old, req.Name)
	})
	if err != nil {
		return response.SmartError(err)
	}

	d.events.SendLifecycle("default", "cluster-group-renamed", groupURL(req.Name), map[string]any{"old_name": old})
	return response.SyncResponseLocation(true, nil, groupURL(req.Name))
}

// DELETE /1.0/cluster/groups/{name}: only an empty group, never "default".
func clusterGroupDelete(d *Daemon, r *http.Request) response.Response {
	if !d.clustered() {
		return response.SmartError(errNotClustered)
	}

	name := pathVar(r, "name")
	err := d.db.Transaction(r.Context(), func(ctx context.Context, tx *db.Tx) error {
		return tx.DeleteClusterGroup(ctx, name)
	})
	if err != nil {
		return response.SmartError(err)
	}

	d.events.SendLifecycle("default", "cluster-group-deleted", groupURL(name), nil)
	return response.EmptySyncResponse
}

// memberGroups maps member names to their groups (for the members API).
func (d *Daemon) memberGroups(ctx context.Context) (map[string][]string, error) {
	if d.db == nil {
		return map[string][]string{}, nil
	}

	var out map[string][]string
	err := d.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		out, err = tx.MemberGroups(ctx)
		return err
	})

	return out, err
}

// groupPrefix starts a ?target= that names a cluster group, not a member.
const groupPrefix = "@"

// targetGroup is the group a ?target= names ("@name"), ok false for a member name.
func targetGroup(target string) (string, bool) {
	return strings.CutPrefix(target, groupPrefix)
}

// groupMembers is the set of member ids of a group (404 naming an unknown group).
func (d *Daemon) groupMembers(ctx context.Context, group string) (map[int64]bool, error) {
	var ids map[int64]bool
	err := d.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		ids, err = tx.ClusterGroupMemberIDs(ctx, group)
		return err
	})

	return ids, err
}

// inGroup keeps the members of ms that are in group (404 for an unknown group).
func (d *Daemon) inGroup(ctx context.Context, ms []cluster.Member, group string) ([]cluster.Member, error) {
	ids, err := d.groupMembers(ctx, group)
	if err != nil {
		return nil, err
	}

	out := make([]cluster.Member, 0, len(ids))
	for _, m := range ms {
		if ids[m.ID] {
			out = append(out, m)
		}
	}

	return out, nil
}

// withGroups fills in the members' groups (GET of the members API).
func (d *Daemon) withGroups(ctx context.Context, ms []api.ClusterMember) error {
	groups, err := d.memberGroups(ctx)
	if err != nil {
		return err
	}

	for i := range ms {
		ms[i].Groups = groups[ms[i].ServerName]
		if ms[i].Groups == nil {
			ms[i].Groups = []string{}
		}
	}

	return nil
}
