// Package networks owns network records: it keeps the database and the running networks
// (lxd/network) in step, with rollback when one of them fails, lists the host's other
// interfaces as unmanaged networks, and creates the default network on first start.
// Handlers decode a request, call one method and respond.
package networks

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/network"
	"github.com/berth-dev/berth/shared/api"
)

// Emit sends a lifecycle event ("network-created", its URL, extra context).
type Emit func(action, url string, ctx map[string]any)

// Service manages networks.
type Service struct {
	dir  string
	db   *db.DB
	mgr  *network.Manager
	log  *slog.Logger
	emit Emit
}

// defaultBridgePrefix names the network made on first start: berthbr0, or the next free
// berthbrN when another daemon on the host has that name.
const defaultBridgePrefix = "berthbr"

// Start brings up (or adopts) every network of the database, removes bridges left by
// deleted state directories, and on first start creates the default network and gives the
// default profile an eth0 on it. Networking failures are logged: the daemon still serves.
func Start(ctx context.Context, stateDir string, d *db.DB, log *slog.Logger, emit Emit) (*Service, error) {
	dir := filepath.Join(stateDir, "networks")
	err := os.MkdirAll(dir, 0o711)
	if err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}

	s := &Service{dir: dir, db: d, mgr: network.NewManager(dir, log), log: log, emit: emit}
	s.mgr.SetACLHooks(network.ACLHooks{Apply: s.applyBridgeACLs, Check: s.checkACLNames})
	s.recoverRename(ctx)
	network.RemoveOrphans(log)
	go network.RemoveOrphanDnsmasqs(log)

	var rows []db.Network
	err = d.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		rows, err = tx.GetNetworks(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("loading networks: %w", err)
	}

	for _, row := range rows {
		err := s.mgr.Load(row.Name, row.Type, row.Config)
		if err != nil {
			log.Error("starting network", "network", row.Name, "err", err)
		}

		s.applyForwards(ctx, row.Name)
	}

	s.applyACLs(ctx)

	marker := filepath.Join(dir, ".default-created")
	_, err = os.Stat(marker)
	if err == nil || len(rows) > 0 {
		return s, nil
	}

	err = s.createDefault(ctx)
	if err != nil {
		log.Error("creating the default network; instances get no NIC", "err", err)
		return s, nil
	}

	return s, os.WriteFile(marker, nil, 0o600)
}

// Manager is the running networks, for the instance manager's NICs.
func (s *Service) Manager() *network.Manager { return s.mgr }

func urlOf(name string) string { return "/1.0/networks/" + url.PathEscape(name) }

func (s *Service) createDefault(ctx context.Context) error {
	for range 5 {
		name := s.mgr.FreeBridgeName(defaultBridgePrefix)
		addr, err := network.PickSubnet(s.mgr.Subnets(name), network.DefaultPrefix)
		if err != nil {
			return err
		}

		config, err := s.mgr.FillDefaults(name, map[string]string{"ipv4.address": addr})
		if err != nil {
			return err
		}

		err = s.create(ctx, name, "bridge", "Berth's default network", config)
		if api.StatusErrorCheck(err, http.StatusConflict) {
			continue // another daemon took the name meanwhile
		}

		if err != nil {
			return err
		}

		s.log.Info("created default network", "network", name, "ipv4.address", config["ipv4.address"])
		return s.addDefaultNIC(ctx, name)
	}

	return errors.New("no free bridge name")
}

// addDefaultNIC gives the default profile eth0 on the network, as LXD's init does, unless
// it has a NIC already.
func (s *Service) addDefaultNIC(ctx context.Context, name string) error {
	return s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		p, err := tx.GetProfile(ctx, "default")
		if err != nil {
			return err
		}

		for _, dev := range p.Devices {
			if dev["type"] == "nic" {
				return nil
			}
		}

		if _, ok := p.Devices["eth0"]; ok {
			return nil
		}

		p.Devices["eth0"] = map[string]string{"type": "nic", "network": name, "name": "eth0"}
		return tx.UpdateProfile(ctx, "default", *p)
	})
}
