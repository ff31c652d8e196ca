package db

import (
	"context"
	"fmt"
	"net/http"
	"slices"

	"github.com/berth-dev/berth/shared/api"
)

// Cluster groups (issue 16, updateFromV12): named sets of members. Every member is in
// at least one group; "default" (id 1) always exists. Members are read by joining
// members, so a link whose member went is never shown.

// DefaultClusterGroup is the group every member starts in; it is neither renamed nor
// deleted.
const DefaultClusterGroup = "default"

// ClusterGroup is a group with its members' names (sorted).
type ClusterGroup struct {
	ID          int64
	Name        string
	Description string
	Members     []string
}

// ClusterGroups lists the groups by name, with their members.
func (tx *Tx) ClusterGroups(ctx context.Context) ([]ClusterGroup, error) {
	rows, err := tx.tx.QueryContext(ctx, `SELECT id, name, description FROM cluster_groups ORDER BY name`)
	if err != nil {
		return nil, fmt.Errorf("listing cluster groups: %w", err)
	}

	var out []ClusterGroup
	for rows.Next() {
		var g ClusterGroup
		err = rows.Scan(&g.ID, &g.Name, &g.Description)
		if err != nil {
			_ = rows.Close()
			return nil, fmt.Errorf("reading cluster groups: %w", err)
		}

		out = append(out, g)
	}

	err = rows.Err()
	_ = rows.Close()
	if err != nil {
		return nil, fmt.Errorf("reading cluster groups: %w", err)
	}

	links, err := tx.groupLinks(ctx)
	if err != nil {
		return nil, err
	}

	for i := range out {
		out[i].Members = links[out[i].ID]
		if out[i].Members == nil {
			out[i].Members = []string{}
		}
	}

	return out, nil
}

// groupLinks maps each group id to its members' names (sorted).
func (tx *Tx) groupLinks(ctx context.Context) (map[int64][]string, error) {
	rows, err := tx.tx.QueryContext(ctx, `
SELECT l.group_id, m.name FROM members_cluster_groups l JOIN members m ON m.id = l.member_id ORDER BY m.name`)
	if err != nil {
		return nil, fmt.Errorf("listing cluster group members: %w", err)
	}

	defer func() { _ = rows.Close() }()
	out := map[int64][]string{}
	for rows.Next() {
		var id int64
		var name string
		err = rows.Scan(&id, &name)
		if err != nil {
			return nil, fmt.Errorf("reading cluster group members: %w", err)
		}

		out[id] = append(out[id], name)
	}

	return out, rows.Err()
}

// ClusterGroup is the group of that name with its members (404 when there is none).
func (tx *Tx) ClusterGroup(ctx context.Context, name string) (ClusterGroup, error) {
	gs, err := tx.ClusterGroups(ctx)
	if err != nil {
		return ClusterGroup{}, err
	}

	for _, g := range gs {
		if g.Name == name {
			return g, nil
		}
	}

	return ClusterGroup{}, notFound("cluster group", name)
}

// MemberGroups maps each member name to the groups it is in (sorted).
func (tx *Tx) MemberGroups(ctx context.Context) (map[string][]string, error) {
	rows, err := tx.tx.QueryContext(ctx, `
SELECT m.name, g.name FROM members_cluster_groups l
JOIN members m ON m.id = l.member_id JOIN cluster_groups g ON g.id = l.group_id ORDER BY g.name`)
	if err != nil {
		return nil, fmt.Errorf("listing members' cluster groups: %w", err)
	}

	defer func() { _ = rows.Close() }()
	out := map[string][]string{}
	for rows.Next() {
		var m, g string
		err = rows.Scan(&m, &g)
		if err != nil {
			return nil, fmt.Errorf("reading members' cluster groups: %w", err)
		}

		out[m] = append(out[m], g)
	}

	return out, rows.Err()
}

// memberIDs resolves member names (400 naming an unknown one: it is a request's body
// that names them).
func (tx *Tx) memberIDs(ctx context.Context, names []string) ([]int64, error) {
	ids := make([]int64, 0, len(names))
	for _, n := range names {
		var id int64
		err := tx.tx.QueryRowContext(ctx, `SELECT id FROM members WHERE name = ?`, n).Scan(&id)
		if err != nil {
			return nil, api.StatusErrorf(http.StatusBadRequest, "cluster member %q not found", n)
		}

		ids = append(ids, id)
	}

	return ids, nil
}

// CreateClusterGroup adds a group with the given members (409 when the name is taken,
// 400 naming an unknown member).
func (tx *Tx) CreateClusterGroup(ctx context.Context, name, description string, members []string) error {
	var n int
	err := tx.tx.QueryRowContext(ctx, `SELECT count(*) FROM cluster_groups WHERE name = ?`, name).Scan(&n)
	if err != nil {
		return fmt.Errorf("checking cluster group %q: %w", name, err)
	}

	if n > 0 {
		return alreadyExists("cluster group", name)
	}

	ids, err := tx.memberIDs(ctx, members)
	if err != nil {
		return err
	}

	res, err := tx.tx.ExecContext(ctx, `INSERT INTO cluster_groups (name, description) VALUES (?, ?)`, name, description)
	if err != nil {
		return fmt.Errorf("adding cluster group %q: %w", name, err)
	}

	gid, err := res.LastInsertId()
	if err != nil {
		return fmt.Errorf("adding cluster group %q: %w", name, err)
	}

	for _, id := range ids {
		err = tx.link(ctx, id, gid)
		if err != nil {
			return err
		}
	}

	return nil
}

func (tx *Tx) link(ctx context.Context, memberID, groupID int64) error {
	_, err := tx.tx.ExecContext(ctx, `INSERT OR IGNORE INTO members_cluster_groups (member_id, group_id) VALUES (?, ?)`, memberID, groupID)
	if err != nil {
		return fmt.Errorf("adding member %d to cluster group %d: %w", memberID, groupID, err)
	}

	return nil
}

func (tx *Tx) unlink(ctx context.Context, memberID, groupID int64) error {
	_, err := tx.tx.ExecContext(ctx, `DELETE FROM members_cluster_groups WHERE member_id = ? AND group_id = ?`, memberID, groupID)
	if err != nil {
		return fmt.Errorf("removing member %d from cluster group %d: %w", memberID, groupID, err)
	}

	return nil
}

// groupCount is how many groups the member is in.
func (tx *Tx) groupCount(ctx context.Context, memberID int64) (int, error) {
	var n int
	err := tx.tx.QueryRowContext(ctx, `
SELECT count(*) FROM members_cluster_groups l JOIN cluster_groups g ON g.id = l.group_id WHERE l.member_id = ?`, memberID).Scan(&n)
	if err != nil {
		return 0, fmt.Errorf("counting the cluster groups of member %d: %w", memberID, err)
	}

	return n, nil
}

// UpdateClusterGroup sets a group's description and members, as LXD does: members
// named are added; a member left out leaves the group only if it is in another one
// (every member stays in at least one group).
func (tx *Tx) UpdateClusterGroup(ctx context.Context, name, description string, members []string) error {
	g, err := tx.ClusterGroup(ctx, name)
	if err != nil {
		return err
	}

	ids, err := tx.memberIDs(ctx, members)
	if err != nil {
		return err
	}

	_, err = tx.tx.ExecContext(ctx, `UPDATE cluster_groups SET description = ? WHERE id = ?`, description, g.ID)
	if err != nil {
		return fmt.Errorf("writing cluster group %q: %w", name, err)
	}

	old, err := tx.memberIDs(ctx, g.Members)
	if err != nil {
		return err
	}

	for i, id := range old {
		if slices.Contains(members, g.Members[i]) {
			continue
		}

		n, err := tx.groupCount(ctx, id)
		if err != nil {
			return err
		}

		if n > 1 {
			err = tx.unlink(ctx, id, g.ID)
			if err != nil {
				return err
			}
		}
	}

	for _, id := range ids {
		err = tx.link(ctx, id, g.ID)
		if err != nil {
			return err
		}
	}

	return nil
}

// SetMemberGroups puts a member in exactly the groups named (at least one; 400 naming
// an unknown group).
func (tx *Tx) SetMemberGroups(ctx context.Context, member string, groups []string) error {
	if len(groups) == 0 {
		return api.StatusErrorf(http.StatusBadRequest, "a cluster member must be in at least one cluster group")
	}

	ids, err := tx.memberIDs(ctx, []string{member})
	if err != nil {
		return notFound("cluster member", member)
	}

	all, err := tx.ClusterGroups(ctx)
	if err != nil {
		return err
	}

	byName := map[string]int64{}
	for _, g := range all {
		byName[g.Name] = g.ID
	}

	for _, g := range groups {
		if _, ok := byName[g]; !ok {
			return api.StatusErrorf(http.StatusBadRequest, "cluster group %q not found", g)
		}
	}

	for name, gid := range byName {
		if slices.Contains(groups, name) {
			err = tx.link(ctx, ids[0], gid)
		} else {
			err = tx.unlink(ctx, ids[0], gid)
		}

		if err != nil {
			return err
		}
	}

	return nil
}

// RenameClusterGroup renames a group ("default" is refused with 403, as LXD does).
func (tx *Tx) RenameClusterGroup(ctx context.Context, oldName, newName string) error {
	if oldName == DefaultClusterGroup {
		return api.StatusErrorf(http.StatusForbidden, "the %q cluster group cannot be renamed", DefaultClusterGroup)
	}

	var n int
	err := tx.tx.QueryRowContext(ctx, `SELECT count(*) FROM cluster_groups WHERE name = ?`, newName).Scan(&n)
	if err != nil {
		return fmt.Errorf("checking cluster group %q: %w", newName, err)
	}

	if n > 0 {
		return alreadyExists("cluster group", newName)
	}

	return tx.rename(ctx, "cluster group", `UPDATE cluster_groups SET name = ? WHERE name = ?`, oldName, newName)
}

// DeleteClusterGroup deletes an empty group: "default" is refused with 403, a group
// with members with 400 naming them, as LXD refuses both.
func (tx *Tx) DeleteClusterGroup(ctx context.Context, name string) error {
	if name == DefaultClusterGroup {
		return api.StatusErrorf(http.StatusForbidden, "the %q cluster group cannot be deleted", DefaultClusterGroup)
	}

	g, err := tx.ClusterGroup(ctx, name)
	if err != nil {
		return err
	}

	if len(g.Members) > 0 {
		return api.StatusErrorf(http.StatusBadRequest, "only empty cluster groups can be removed: %q has members %v", name, g.Members)
	}

	return tx.execOne(ctx, "cluster group", name, `DELETE FROM cluster_groups WHERE id = ?`, g.ID)
}

// ClusterGroupMemberIDs is the set of member ids in a group (404 for an unknown group).
func (tx *Tx) ClusterGroupMemberIDs(ctx context.Context, name string) (map[int64]bool, error) {
	gid, err := tx.lookupID(ctx, `SELECT id FROM cluster_groups WHERE name = ?`, "cluster group", name)
	if err != nil {
		return nil, err
	}

	rows, err := tx.tx.QueryContext(ctx, `SELECT member_id FROM members_cluster_groups WHERE group_id = ?`, gid)
	if err != nil {
		return nil, fmt.Errorf("listing the members of cluster group %q: %w", name, err)
	}

	defer func() { _ = rows.Close() }()
	out := map[int64]bool{}
	for rows.Next() {
		var id int64
		err = rows.Scan(&id)
		if err != nil {
			return nil, fmt.Errorf("reading the members of cluster group %q: %w", name, err)
		}

		out[id] = true
	}

	return out, rows.Err()
}

// addToDefaultGroup puts a new member in "default" (ClusterMemberAdd).
func (tx *Tx) addToDefaultGroup(ctx context.Context, memberID int64) error {
	_, err := tx.tx.ExecContext(ctx, `
INSERT OR IGNORE INTO members_cluster_groups (member_id, group_id) SELECT ?, id FROM cluster_groups WHERE name = ?`,
		memberID, DefaultClusterGroup)
	if err != nil {
		return fmt.Errorf("adding member %d to the default cluster group: %w", memberID, err)
	}

	return nil
}
