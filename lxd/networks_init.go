package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/network"
	"github.com/berth-dev/berth/shared/api"
)

// defaultBridgePrefix names the network made on first start: berthbr0, or the next free
// berthbrN when another daemon on the host has that name.
const defaultBridgePrefix = "berthbr"

// initNetworks brings up (or adopts) every network of the database, removes bridges left by
// deleted state directories, and on first start creates the default network and gives the
// default profile an eth0 on it. Networking failures are logged: the daemon still serves.
func (d *Daemon) initNetworks(ctx context.Context) error {
	dir := filepath.Join(d.dir, "networks")
	err := os.MkdirAll(dir, 0o711)
	if err != nil {
		return fmt.Errorf("creating %s: %w", dir, err)
	}

	network.RemoveOrphans(d.log)
	d.networks = network.NewManager(dir, d.log)

	var rows []db.Network
	err = d.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		rows, err = tx.GetNetworks(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("loading networks: %w", err)
	}

	for _, row := range rows {
		err := d.networks.Load(row.Name, row.Type, row.Config)
		if err != nil {
			d.log.Error("starting network", "network", row.Name, "err", err)
		}
	}

	marker := filepath.Join(dir, ".default-created")
	_, err = os.Stat(marker)
	if err == nil || len(rows) > 0 {
		return nil
	}

	err = d.createDefaultNetwork(ctx)
	if err != nil {
		d.log.Error("creating the default network; instances get no NIC", "err", err)
		return nil
	}

	return os.WriteFile(marker, nil, 0o600)
}

func (d *Daemon) createDefaultNetwork(ctx context.Context) error {
	var name string
	for range 5 {
		name = d.networks.FreeBridgeName(defaultBridgePrefix)
		config, err := d.networks.FillDefaults(name, nil)
		if err != nil {
			return err
		}

		err = d.createNetwork(ctx, name, "bridge", "Berth's default network", config)
		if api.StatusErrorCheck(err, http.StatusConflict) {
			continue // another daemon took the name meanwhile
		}

		if err != nil {
			return err
		}

		d.log.Info("created default network", "network", name, "ipv4.address", config["ipv4.address"])
		return d.addDefaultNIC(ctx, name)
	}

	return errors.New("no free bridge name")
}

// addDefaultNIC gives the default profile eth0 on the network, as LXD's init does, unless
// it has a NIC already.
func (d *Daemon) addDefaultNIC(ctx context.Context, name string) error {
	return d.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
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
