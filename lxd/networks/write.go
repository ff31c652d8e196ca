package networks

import (
	"context"
	"maps"
	"net/http"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/etag"
	"github.com/berth-dev/berth/lxd/ip"
	"github.com/berth-dev/berth/lxd/network"
	"github.com/berth-dev/berth/shared/api"
)

// Create validates a request, brings the network up and records it.
func (s *Service) Create(ctx context.Context, req api.NetworksPost) error {
	err := network.ValidateName(req.Name)
	if err != nil {
		return err
	}

	if req.Type == "" {
		req.Type = "bridge"
	}

	if req.Type != "bridge" {
		return api.StatusErrorf(http.StatusBadRequest, "network type %q is not supported (only bridge)", req.Type)
	}

	err = network.ValidateConfig(req.Config)
	if err != nil {
		return err
	}

	unlock := s.mgr.Lock()
	defer unlock()
	err = s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		_, err := tx.GetNetwork(ctx, req.Name)
		if err == nil {
			return api.StatusErrorf(http.StatusConflict, "network %q already exists", req.Name)
		}

		if api.StatusErrorCheck(err, http.StatusNotFound) {
			return nil
		}

		return err
	})
	if err != nil {
		return err
	}

	if ip.LinkExists(req.Name) {
		return api.StatusErrorf(http.StatusConflict, "a host interface named %q exists", req.Name)
	}

	config, err := s.mgr.FillDefaults(req.Name, req.Config)
	if err != nil {
		return err
	}

	err = s.checkACLConfig(ctx, config)
	if err != nil {
		return err
	}

	err = s.create(ctx, req.Name, req.Type, req.Description, config)
	if err != nil {
		return err
	}

	s.applyACLs(ctx)
	return nil
}

// create brings a network up, then records it; if recording fails it is torn down.
func (s *Service) create(ctx context.Context, name, typ, description string, config map[string]string) error {
	_, err := s.mgr.Create(name, typ, config)
	if err != nil {
		return err
	}

	err = s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		_, err := tx.CreateNetwork(ctx, db.Network{Name: name, Type: typ, Description: description, Config: config})
		return err
	})
	if err != nil {
		derr := s.mgr.Delete(name)
		if derr != nil {
			s.log.Warn("removing network after failed create", "network", name, "err", derr)
		}

		return err
	}

	s.emit("network-created", urlOf(name), nil)
	return nil
}

// Update applies a PUT (patch false: config replaced) or a PATCH (config merged, an empty
// description kept). ifMatch is the request's If-Match header ("" skips the check).
func (s *Service) Update(ctx context.Context, name, ifMatch string, req api.NetworkPut, patch bool) error {
	unlock := s.mgr.Lock()
	defer unlock()
	cur, err := s.getManaged(ctx, name)
	if err != nil {
		return err
	}

	err = etag.Match(ifMatch, ETag(cur))
	if err != nil {
		return err
	}

	config := map[string]string{}
	if patch {
		maps.Copy(config, cur.Config)
	}

	maps.Copy(config, req.Config)
	err = s.mgr.FillUpdate(name, cur.Config, config)
	if err != nil {
		return err
	}

	err = s.checkACLConfig(ctx, config)
	if err != nil {
		return err
	}

	if req.Description == "" && patch {
		req.Description = cur.Description
	}

	n, err := s.mgr.Get(name)
	if err != nil {
		return err
	}

	err = n.Update(config)
	if err != nil {
		return err
	}

	err = s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		return tx.UpdateNetwork(ctx, name, db.Network{Description: req.Description, Config: config})
	})
	if err != nil {
		return err
	}

	s.applyForwards(ctx, name) // targets outside a new subnet drop out
	s.applyACLs(ctx)
	s.emit("network-updated", urlOf(name), nil)
	return nil
}

// Delete tears a network down and forgets it; one in use is a 400, as LXD.
func (s *Service) Delete(ctx context.Context, name string) error {
	unlock := s.mgr.Lock()
	defer unlock()
	cur, err := s.getManaged(ctx, name)
	if err != nil {
		return err
	}

	if len(cur.UsedBy) > 0 {
		return api.StatusErrorf(http.StatusBadRequest, "the network is currently in use by %v", cur.UsedBy)
	}

	err = s.mgr.Delete(name)
	if err != nil && !api.StatusErrorCheck(err, http.StatusNotFound) {
		return err
	}

	err = s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		return tx.DeleteNetwork(ctx, name)
	})
	if err != nil {
		return err
	}

	s.emit("network-deleted", urlOf(name), nil)
	return nil
}
