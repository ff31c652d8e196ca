package client

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/berth-dev/berth/shared/api"
)

// ApplyPreseed applies a checked preseed (ParsePreseed) through the API in LXD 5.0.2's
// order: server config, storage pools, networks of the default project, projects,
// networks of other projects, profiles, then the cluster (enable). An entity that exists
// is updated as LXD does it (description replaced when given, config and device keys
// merged), one that does not is created. On any failure every change made so far is
// undone, last first: what was created is deleted, what was changed is put back as it
// was; the error says so, and names each undo that failed.
//
// A preseed that joins a cluster (cluster_token) sets this member's addresses if it gives
// them, then sends PUT /1.0/cluster and waits for the join; the server restarts itself as
// a member. A server already a member under the preseed's name is left alone, so a
// preseed applied again after the join (berthd --preseed across its restart) is a no-op.
func (c *Client) ApplyPreseed(ctx context.Context, p *Preseed) (err error) {
	if p.config == nil {
		err = p.Validate()
		if err != nil {
			return err
		}
	}

	undo := &preseedUndo{}
	defer func() {
		if err != nil {
			err = undo.run(ctx, c, err)
		}
	}()

	if p.IsJoin() {
		err = c.preseedConfig(ctx, p, undo)
		if err != nil {
			return err
		}

		return c.preseedJoin(ctx, p.Cluster)
	}

	steps := []func(context.Context, *Preseed, *preseedUndo) error{
		c.preseedConfig, c.preseedPools, c.preseedDefaultNetworks, c.preseedProjects,
		c.preseedOtherNetworks, c.preseedProfiles, c.preseedEnable,
	}

	for _, step := range steps {
		err = step(ctx, p, undo)
		if err != nil {
			return err
		}
	}

	return nil
}

// preseedUndo is the list of what to undo should a later step fail.
type preseedUndo struct {
	steps []undoStep
}

type undoStep struct {
	what string // "delete network \"br1\""
	fn   func(context.Context) error
}

func (u *preseedUndo) add(what string, fn func(context.Context) error) {
	u.steps = append(u.steps, undoStep{what, fn})
}

// run undoes every step, last first, with a context of its own (the caller's may be what
// ended the apply), and returns cause with what was undone and what could not be.
func (u *preseedUndo) run(ctx context.Context, c *Client, cause error) error {
	if len(u.steps) == 0 {
		return fmt.Errorf("%w (nothing was changed)", cause)
	}

	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*time.Minute)
	defer cancel()

	var failed []string
	for i := len(u.steps) - 1; i >= 0; i-- {
		s := u.steps[i]
		err := s.fn(ctx)
		if err != nil {
			failed = append(failed, fmt.Sprintf("%s: %v", s.what, err))
		}
	}

	if len(failed) > 0 {
		return fmt.Errorf("%w (rolled back %d of %d changes; could not %s)", cause, len(u.steps)-len(failed), len(u.steps), strings.Join(failed, "; could not "))
	}

	return fmt.Errorf("%w (all %d changes rolled back)", cause, len(u.steps))
}

func isNotFound(err error) bool { return api.StatusErrorCheck(err, http.StatusNotFound) }

func (c *Client) preseedConfig(ctx context.Context, p *Preseed, undo *preseedUndo) error {
	if len(p.config) == 0 {
		return nil
	}

	srv, etag, err := c.GetServer(ctx)
	if err != nil {
		return fmt.Errorf("reading the server configuration: %w", err)
	}

	old := maps.Clone(srv.Config)
	if old == nil {
		old = map[string]string{}
	}

	next := maps.Clone(old)
	for k, v := range p.config {
		next[k] = v
	}

	// As lxd init: a preseed that clusters and gives core.https_address makes it the
	// cluster address too, unless it names one.
	if p.Cluster != nil && p.Cluster.Enabled && p.config["core.https_address"] != "" {
		if _, ok := p.config["cluster.https_address"]; !ok && old["cluster.https_address"] == "" {
			next["cluster.https_address"] = p.config["core.https_address"]
		}
	}

	if maps.Equal(old, next) {
		return nil
	}

	err = c.UpdateServerConfig(ctx, next, etag)
	if err != nil {
		return fmt.Errorf("updating the server configuration: %w", err)
	}

	undo.add("restore the server configuration", func(ctx context.Context) error {
		return c.UpdateServerConfig(ctx, old, "")
	})

	return nil
}

func (c *Client) preseedPools(ctx context.Context, p *Preseed, undo *preseedUndo) error {
	for _, sp := range p.StoragePools {
		cur, etag, err := c.GetStoragePool(ctx, sp.Name)
		if isNotFound(err) {
			err = c.CreateStoragePool(ctx, sp)
			if err != nil {
				return fmt.Errorf("creating storage pool %q: %w", sp.Name, err)
			}

			name := sp.Name
			undo.add(fmt.Sprintf("delete storage pool %q", name), func(ctx context.Context) error {
				return c.DeleteStoragePool(ctx, name)
			})

			continue
		}

		if err != nil {
			return fmt.Errorf("reading storage pool %q: %w", sp.Name, err)
		}

		if cur.Driver != sp.Driver {
			return fmt.Errorf("storage pool %q has driver %q, not %q", sp.Name, cur.Driver, sp.Driver)
		}

		next := cur.StoragePoolPut
		next.Config = mergeStrings(cur.Config, sp.Config)
		if sp.Description != "" {
			next.Description = sp.Description
		}

		err = c.UpdateStoragePool(ctx, sp.Name, next, etag)
		if err != nil {
			return fmt.Errorf("updating storage pool %q: %w", sp.Name, err)
		}

		old, name := cur.StoragePoolPut, sp.Name
		undo.add(fmt.Sprintf("restore storage pool %q", name), func(ctx context.Context) error {
			return c.UpdateStoragePool(ctx, name, old, "")
		})
	}

	return nil
}

func (c *Client) preseedDefaultNetworks(ctx context.Context, p *Preseed, undo *preseedUndo) error {
	return c.preseedNetworks(ctx, p, undo, true)
}

func (c *Client) preseedOtherNetworks(ctx context.Context, p *Preseed, undo *preseedUndo) error {
	return c.preseedNetworks(ctx, p, undo, false)
}

// preseedNetworks applies the networks of the default project (before the projects, which
// may use them) or of the others (after the projects, which they need).
func (c *Client) preseedNetworks(ctx context.Context, p *Preseed, undo *preseedUndo, defaultProject bool) error {
	for _, n := range p.Networks {
		proj := projectOr(n.Project)
		if (proj == "default") != defaultProject {
			continue
		}

		cur, etag, err := c.getProjectNetwork(ctx, proj, n.Name)
		if isNotFound(err) {
			err = c.createProjectNetwork(ctx, proj, n.NetworksPost)
			if err != nil {
				return fmt.Errorf("creating network %q in project %q: %w", n.Name, proj, err)
			}

			name := n.Name
			undo.add(fmt.Sprintf("delete network %q", name), func(ctx context.Context) error {
				return c.deleteProjectNetwork(ctx, proj, name)
			})

			continue
		}

		if err != nil {
			return fmt.Errorf("reading network %q in project %q: %w", n.Name, proj, err)
		}

		next := cur.NetworkPut
		next.Config = mergeStrings(cur.Config, n.Config)
		if n.Description != "" {
			next.Description = n.Description
		}

		err = c.updateProjectNetwork(ctx, proj, n.Name, next, etag)
		if err != nil {
			return fmt.Errorf("updating network %q in project %q: %w", n.Name, proj, err)
		}

		old, name := cur.NetworkPut, n.Name
		undo.add(fmt.Sprintf("restore network %q", name), func(ctx context.Context) error {
			return c.updateProjectNetwork(ctx, proj, name, old, "")
		})
	}

	return nil
}

func (c *Client) preseedProjects(ctx context.Context, p *Preseed, undo *preseedUndo) error {
	for _, pj := range p.Projects {
		cur, etag, err := c.GetProject(ctx, pj.Name)
		if isNotFound(err) {
			err = c.CreateProject(ctx, pj)
			if err != nil {
				return fmt.Errorf("creating project %q: %w", pj.Name, err)
			}

			name := pj.Name
			undo.add(fmt.Sprintf("delete project %q", name), func(ctx context.Context) error {
				return c.DeleteProject(ctx, name)
			})

			continue
		}

		if err != nil {
			return fmt.Errorf("reading project %q: %w", pj.Name, err)
		}

		next := cur.ProjectPut
		next.Config = mergeStrings(cur.Config, pj.Config)
		if pj.Description != "" {
			next.Description = pj.Description
		}

		err = c.UpdateProject(ctx, pj.Name, next, etag)
		if err != nil {
			return fmt.Errorf("updating project %q: %w", pj.Name, err)
		}

		old, name := cur.ProjectPut, pj.Name
		undo.add(fmt.Sprintf("restore project %q", name), func(ctx context.Context) error {
			return c.UpdateProject(ctx, name, old, "")
		})
	}

	return nil
}

func (c *Client) preseedProfiles(ctx context.Context, p *Preseed, undo *preseedUndo) error {
	for _, pr := range p.Profiles {
		cur, etag, err := c.GetProfile(ctx, pr.Name)
		if isNotFound(err) {
			err = c.CreateProfile(ctx, pr)
			if err != nil {
				return fmt.Errorf("creating profile %q: %w", pr.Name, err)
			}

			name := pr.Name
			undo.add(fmt.Sprintf("delete profile %q", name), func(ctx context.Context) error {
				return c.DeleteProfile(ctx, name)
			})

			continue
		}

		if err != nil {
			return fmt.Errorf("reading profile %q: %w", pr.Name, err)
		}

		next := api.ProfilePut{Description: cur.Description, Config: mergeStrings(cur.Config, pr.Config)}
		if pr.Description != "" {
			next.Description = pr.Description
		}

		// Devices: a new one is added, an existing one gets the preseed's keys.
		next.Devices = make(map[string]map[string]string, len(cur.Devices)+len(pr.Devices))
		for dev, cfg := range cur.Devices {
			next.Devices[dev] = maps.Clone(cfg)
		}

		for dev, cfg := range pr.Devices {
			next.Devices[dev] = mergeStrings(next.Devices[dev], cfg)
		}

		err = c.UpdateProfile(ctx, pr.Name, next, etag)
		if err != nil {
			return fmt.Errorf("updating profile %q: %w", pr.Name, err)
		}

		old, name := cur.ProfilePut, pr.Name
		undo.add(fmt.Sprintf("restore profile %q", name), func(ctx context.Context) error {
			return c.UpdateProfile(ctx, name, old, "")
		})
	}

	return nil
}

// preseedEnable turns the server into a cluster's first member unless it is clustered
// already. Last: nothing after it could fail, and it is not undone (a failed enable
// leaves the server unclustered).
func (c *Client) preseedEnable(ctx context.Context, p *Preseed, _ *preseedUndo) error {
	if p.Cluster == nil || !p.Cluster.Enabled {
		return nil
	}

	cur, etag, err := c.GetCluster(ctx)
	if err != nil {
		return fmt.Errorf("reading the cluster configuration: %w", err)
	}

	if cur.Enabled {
		return nil
	}

	req := api.ClusterPut{Cluster: api.Cluster{ServerName: p.Cluster.ServerName, Enabled: true, MemberConfig: p.Cluster.MemberConfig}}
	op, err := c.UpdateCluster(ctx, req, etag)
	if err == nil {
		err = op.Wait(ctx)
	}

	if err != nil {
		return fmt.Errorf("enabling clustering: %w", err)
	}

	return nil
}

// preseedJoin joins the cluster the token names, unless the server is already a member
// of that name.
func (c *Client) preseedJoin(ctx context.Context, pc *PreseedCluster) error {
	cur, _, err := c.GetCluster(ctx)
	if err != nil {
		return fmt.Errorf("reading the cluster configuration: %w", err)
	}

	if cur.Enabled {
		if cur.ServerName == pc.ServerName {
			return nil
		}

		return fmt.Errorf("joining the cluster: this server is already a cluster member, named %q", cur.ServerName)
	}

	req := pc.ClusterPut
	op, err := c.UpdateCluster(ctx, req, "")
	if err == nil {
		err = op.Wait(ctx)
	}

	if err != nil {
		return fmt.Errorf("joining the cluster: %w", err)
	}

	return nil
}

// mergeStrings is base with over's keys set (a new map).
func mergeStrings(base, over map[string]string) map[string]string {
	out := make(map[string]string, len(base)+len(over))
	maps.Copy(out, base)
	maps.Copy(out, over)
	return out
}
