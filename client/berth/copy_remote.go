package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/shared/api"
)

// copyBetween copies instance src of remote rs to dst on remote rd with LXD's migration
// API, as lxc copy does: pull mode when the source is an HTTPS remote (the target dials
// the source's operation, its certificate pinned), else push mode when the target is one
// (the source dials the target's). put is what the target gets; instanceOnly leaves the
// snapshots; start starts it there, in the target's operation where the target can. It
// returns once the target has the instance (running, with start).
func (a *app) copyBetween(ctx context.Context, rs, src, rd, dst string, put api.InstancePut, instanceOnly, start bool) error {
	sc, err := a.remoteClient(rs)
	if err != nil {
		return err
	}

	dc, err := a.remoteClient(rd)
	if err != nil {
		return err
	}

	srcPost := api.InstancePost{InstanceOnly: instanceOnly, ContainerOnly: instanceOnly}
	req := api.InstancesPost{InstancePut: put, Name: dst, Type: "container", Start: start && startsOnCreate(ctx, dc),
		Source: api.InstanceSource{Type: "migration", InstanceOnly: instanceOnly, ContainerOnly: instanceOnly, BaseImage: put.Config["volatile.base_image"]}}

	top, err := a.migrate(ctx, sc, dc, rs, rd, src, srcPost, req)
	if top == nil {
		return err
	}

	return startCopy(ctx, dc, top, start, err)
}

// migrate runs one migration of src from sc to dc: req is the target's request, srcPost
// the source's, each completed here with the other's operation. It returns the target's
// operation once it has one.
func (a *app) migrate(ctx context.Context, sc, dc *client.Client, rs, rd, src string, srcPost api.InstancePost, req api.InstancesPost) (*client.Operation, error) {
	conf, err := a.config()
	if err != nil {
		return nil, err
	}

	if u := sc.URL(); strings.HasPrefix(u, "https://") {
		cert, err := os.ReadFile(conf.ServerCertPath(rs))
		if err != nil && !os.IsNotExist(err) {
			return nil, err
		}

		sop, err := sc.MigrateInstance(ctx, src, srcPost)
		if err != nil {
			return nil, err
		}

		req.Source.Mode = "pull"
		req.Source.Operation = u + "/1.0/operations/" + sop.ID
		req.Source.Websockets = client.MigrationSecrets(sop)
		req.Source.Certificate = string(cert)
		top, err := dc.CreateInstance(ctx, req)
		if err != nil {
			_ = sop.Cancel(ctx)
			return nil, err
		}

		err = top.WaitOrCancel(ctx)
		if err != nil {
			return top, err
		}

		err = sop.Wait(ctx)
		if err != nil {
			return nil, err
		}

		return top, nil
	}

	u := dc.URL()
	if !strings.HasPrefix(u, "https://") {
		return nil, fmt.Errorf("copying between %s and %s needs one of them to be an HTTPS remote", rs, rd)
	}

	cert, err := os.ReadFile(conf.ServerCertPath(rd))
	if err != nil && !os.IsNotExist(err) {
		return nil, err
	}

	req.Source.Mode = "push"
	top, err := dc.CreateInstance(ctx, req)
	if err != nil {
		return nil, err
	}

	srcPost.Target = &api.InstancePostTarget{Operation: u + "/1.0/operations/" + top.ID, Websockets: client.MigrationSecrets(top), Certificate: string(cert)}
	sop, err := sc.MigrateInstance(ctx, src, srcPost)
	if err != nil {
		_ = top.Cancel(ctx)
		return nil, err
	}

	err = sop.WaitOrCancel(ctx)
	if err != nil {
		return nil, err
	}

	return top, top.Wait(ctx)
}

// copyRemotes splits copy's and move's two [REMOTE:]NAME arguments.
func (a *app) copyRemotes(src, dst string) (rs, ns, rd, nd string, err error) {
	rs, ns, err = a.parseRemote(src)
	if err != nil {
		return "", "", "", "", err
	}

	rd, nd, err = a.parseRemote(dst)
	if err != nil {
		return "", "", "", "", err
	}

	return rs, ns, rd, nd, nil
}
