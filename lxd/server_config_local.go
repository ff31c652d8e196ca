package main

import (
	"context"
	"fmt"
	"maps"

	"github.com/berth-dev/berth/lxd/cluster"
	"github.com/berth-dev/berth/lxd/db"
)

// splitServerConfig separates a clustered member's own keys (its listener addresses,
// kept in local.db) from the cluster's (the global node_config table). A host that is
// not clustered keeps everything in its one database: all of cfg is "global".
func splitServerConfig(clustered bool, cfg map[string]string) (global, local map[string]string) {
	global, local = map[string]string{}, map[string]string{}
	for k, v := range cfg {
		if clustered && cluster.IsLocalConfigKey(k) {
			local[k] = v
		} else {
			global[k] = v
		}
	}

	return global, local
}

// mergeServerConfig is the configuration a member shows and applies: the cluster's
// global keys (any member-local key another member once stored globally is ignored)
// and its own local ones.
func mergeServerConfig(clustered bool, stored, local map[string]string) map[string]string {
	global, _ := splitServerConfig(clustered, stored)
	out := maps.Clone(global)
	if clustered {
		for k, v := range local {
			out[k] = v
		}
	}

	return out
}

// unsetKeys are the keys of old that next no longer has.
func unsetKeys(old, next map[string]string) []string {
	var out []string
	for k := range old {
		if _, ok := next[k]; !ok {
			out = append(out, k)
		}
	}

	return out
}

// readServerConfig reads the stored configuration: node_config, and on a clustered
// member its own keys from local.db.
func (d *Daemon) readServerConfig(ctx context.Context) (map[string]string, error) {
	var stored map[string]string
	err := d.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		stored, err = tx.GetNodeConfig(ctx)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("loading server config: %w", err)
	}

	clustered := d.cluster.Enabled()
	var local map[string]string
	if clustered {
		local, err = d.cluster.LocalConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("loading server config: %w", err)
		}
	}

	return mergeServerConfig(clustered, stored, local), nil
}

// reloadGlobalConfig takes in the cluster's configuration as another member may have
// changed it (issue 16 review: before, a member kept the global keys it had loaded at
// start). What reads the configuration on each use (core.metrics_authentication,
// core.remote_token_expiry, cluster.join_token_expiry) follows at once; the image cache
// pruner is woken for a new core.remote_cache_expiry. The member's own keys are not
// reloaded: only this member writes them.
func (d *Daemon) reloadGlobalConfig(ctx context.Context) error {
	var stored map[string]string
	err := d.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		stored, err = tx.GetNodeConfig(ctx)
		return err
	})
	if err != nil {
		return fmt.Errorf("reloading server config: %w", err)
	}

	d.configWriteMu.Lock()
	defer d.configWriteMu.Unlock()
	old := d.serverConfig()
	_, local := splitServerConfig(true, old)
	next := mergeServerConfig(true, stored, local)
	if maps.Equal(old, next) {
		return nil
	}

	d.configMu.Lock()
	d.config = next
	d.configMu.Unlock()
	if old[keyRemoteCacheExpiry] != next[keyRemoteCacheExpiry] {
		pokeImageCachePruner()
	}

	return nil
}
