package db

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/berth-dev/berth/shared/api"
)

// NetworkForward is a forward row: the API's writable part, the network's name and the
// listen address (unique on the host).
type NetworkForward struct {
	Network       string
	ListenAddress string
	api.NetworkForwardPut
}

const forwardsSelect = `
SELECT n.name, f.listen_address, f.description, f.config, f.ports
FROM networks_forwards f JOIN networks n ON n.id = f.network_id
WHERE (?1 IS NULL OR n.name = ?1) AND (?2 IS NULL OR f.listen_address = ?2)
ORDER BY n.name, f.listen_address`

// GetNetworkForwards lists the forwards of a network, or of every network when network
// is "".
func (tx *Tx) GetNetworkForwards(ctx context.Context, network string) ([]NetworkForward, error) {
	var n any
	if network != "" {
		n = network
	}

	return tx.queryForwards(ctx, n, nil)
}

// GetNetworkForward returns one forward of a network: 404 when there is none.
func (tx *Tx) GetNetworkForward(ctx context.Context, network, listen string) (*NetworkForward, error) {
	fs, err := tx.queryForwards(ctx, network, listen)
	if err != nil {
		return nil, err
	}

	if len(fs) == 0 {
		return nil, notFound("network forward", listen)
	}

	return &fs[0], nil
}

func (tx *Tx) queryForwards(ctx context.Context, network, listen any) ([]NetworkForward, error) {
	rows, err := tx.tx.QueryContext(ctx, forwardsSelect, network, listen)
	if err != nil {
		return nil, fmt.Errorf("querying network forwards: %w", err)
	}

	defer func() { _ = rows.Close() }()
	out := []NetworkForward{}
	for rows.Next() {
		var f NetworkForward
		var config, ports string
		err := rows.Scan(&f.Network, &f.ListenAddress, &f.Description, &config, &ports)
		if err != nil {
			return nil, fmt.Errorf("scanning network forward: %w", err)
		}

		err = json.Unmarshal([]byte(config), &f.Config)
		if err == nil {
			err = json.Unmarshal([]byte(ports), &f.Ports)
		}

		if err != nil {
			return nil, fmt.Errorf("decoding network forward %s: %w", f.ListenAddress, err)
		}

		out = append(out, f)
	}

	err = rows.Err()
	if err != nil {
		return nil, fmt.Errorf("reading network forwards: %w", err)
	}

	return out, nil
}

func forwardJSON(f NetworkForward) (string, string, error) {
	config, err := json.Marshal(orEmpty(f.Config))
	if err != nil {
		return "", "", err
	}

	if f.Ports == nil {
		f.Ports = []api.NetworkForwardPort{}
	}

	ports, err := json.Marshal(f.Ports)
	if err != nil {
		return "", "", err
	}

	return string(config), string(ports), nil
}

// CreateNetworkForward inserts a forward: 404 without its network, 409 when the listen
// address is forwarded already (by any network).
func (tx *Tx) CreateNetworkForward(ctx context.Context, f NetworkForward) error {
	id, err := tx.networkID(ctx, f.Network)
	if err != nil {
		return err
	}

	config, ports, err := forwardJSON(f)
	if err != nil {
		return err
	}

	_, err = tx.tx.ExecContext(ctx, `INSERT INTO networks_forwards (network_id, listen_address, description, config, ports)
VALUES (?, ?, ?, ?, ?)`, id, f.ListenAddress, f.Description, config, ports)
	if isUnique(err) {
		return alreadyExists("network forward", f.ListenAddress)
	}

	if err != nil {
		return fmt.Errorf("inserting network forward %s: %w", f.ListenAddress, err)
	}

	return nil
}

// UpdateNetworkForward replaces a forward's description, config and ports: 404 when
// there is none.
func (tx *Tx) UpdateNetworkForward(ctx context.Context, f NetworkForward) error {
	config, ports, err := forwardJSON(f)
	if err != nil {
		return err
	}

	return tx.execOne(ctx, "network forward", f.ListenAddress, `UPDATE networks_forwards SET description = ?, config = ?, ports = ?
WHERE listen_address = ? AND network_id = (SELECT id FROM networks WHERE name = ?)`,
		f.Description, config, ports, f.ListenAddress, f.Network)
}

// DeleteNetworkForward deletes a forward: 404 when there is none.
func (tx *Tx) DeleteNetworkForward(ctx context.Context, network, listen string) error {
	return tx.execOne(ctx, "network forward", listen, `DELETE FROM networks_forwards
WHERE listen_address = ? AND network_id = (SELECT id FROM networks WHERE name = ?)`, listen, network)
}
