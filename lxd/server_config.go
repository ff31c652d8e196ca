package main

import (
	"context"
	"fmt"
	"net/http"
	"sort"
	"strconv"
	"time"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/etag"
	"github.com/berth-dev/berth/lxd/listener"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/lxd/tuning"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/expiry"
)

// Server configuration keys berthd knows (stored in node_config; on a clustered member
// the listener addresses are kept in its local.db, server_config_local.go). Any other key is refused by name rather than stored and ignored.
const (
	keyHTTPSAddress   = "core.https_address"
	keyMetricsAddress = "core.metrics_address"
	keyMetricsAuth    = "core.metrics_authentication"
	keyTokenExpiry    = "core.remote_token_expiry"
)

var serverKeys = map[string]func(string) error{
	tuning.ConfigKey:  tuning.ValidConfig, // read at start only
	keyHTTPSAddress:   validAddress,
	keyMetricsAddress: validAddress,
	keyMetricsAuth: func(v string) error {
		_, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("%q is not true or false", v)
		}

		return nil
	},
	keyRemoteCacheExpiry: validRemoteCacheExpiry,
	keyTokenExpiry: func(v string) error {
		_, err := expiry.After(time.Now(), v)
		return err
	},
}

func validAddress(v string) error {
	_, err := listener.Canonical(v, listener.DefaultPort)
	return err
}

// PUT /1.0 (the whole configuration: keys left out are unset) and PATCH /1.0 (the keys
// given; an empty value unsets). The If-Match check matches GET /1.0's ETag. Listener
// addresses are applied first: a change whose address cannot be bound is refused and
// changes nothing.
func serverPut(d *Daemon, r *http.Request) response.Response {
	req := struct {
		Config map[string]any `json:"config"`
	}{}

	err := decodeJSON(r, &req)
	if err != nil {
		return response.SmartError(err)
	}

	given := make(map[string]string, len(req.Config))
	keys := make([]string, 0, len(req.Config))
	for k, v := range req.Config {
		switch v := v.(type) {
		case string:
			given[k] = v
		case bool:
			given[k] = strconv.FormatBool(v)
		case nil:
			given[k] = ""
		default:
			return response.BadRequest(fmt.Errorf("server config key %q: value must be a string", k))
		}

		keys = append(keys, k)
	}

	sort.Strings(keys)
	for _, k := range keys {
		check, ok := serverKeys[k]
		if !ok {
			return response.BadRequest(fmt.Errorf("server config key %q is not supported by berthd", k))
		}

		if given[k] == "" {
			continue
		}

		err := check(given[k])
		if err != nil {
			return response.BadRequest(fmt.Errorf("server config key %q: %w", k, err))
		}
	}

	d.configWriteMu.Lock()
	defer d.configWriteMu.Unlock()
	old := d.serverConfig()
	err = etag.Check(r, old)
	if err != nil {
		return response.SmartError(err)
	}

	next := map[string]string{}
	if r.Method == http.MethodPatch {
		for k, v := range old {
			next[k] = v
		}
	}

	for k, v := range given {
		next[k] = v
	}

	for k, v := range next {
		if v == "" {
			delete(next, k)
		}
	}

	return response.SmartError(d.applyServerConfig(r.Context(), old, next))
}

// applyServerConfig moves the listeners, then stores next; on any failure the
// listeners go back where they were.
func (d *Daemon) applyServerConfig(ctx context.Context, old, next map[string]string) error {
	type move struct {
		ep       *listener.Endpoint
		from, to string
	}

	if d.cluster.Enabled() && old[keyClusterAddress] != next[keyClusterAddress] {
		return api.StatusErrorf(http.StatusBadRequest, "server config key %q: a member's cluster address cannot be changed", keyClusterAddress)
	}

	var moved []move
	undo := func() {
		for i := len(moved) - 1; i >= 0; i-- {
			err := moved[i].ep.Set(moved[i].from)
			if err != nil {
				d.log.Error("restoring listener", "address", moved[i].from, "err", err)
			}
		}
	}

	for _, key := range []string{keyHTTPSAddress, keyMetricsAddress} {
		if old[key] == next[key] {
			continue
		}

		ep := d.https
		if key == keyMetricsAddress {
			ep = d.metricsListener
		}

		err := ep.Set(next[key])
		if err != nil {
			undo()
			return api.StatusErrorf(http.StatusBadRequest, "server config key %q: %v", key, err)
		}

		moved = append(moved, move{ep: ep, from: old[key], to: next[key]})
	}

	// On a clustered member the listener addresses are its own (local.db); the rest is
	// the cluster's (node_config).
	clustered := d.cluster.Enabled()
	oldGlobal, oldLocal := splitServerConfig(clustered, old)
	nextGlobal, nextLocal := splitServerConfig(clustered, next)
	err := d.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		return tx.UpdateNodeConfig(ctx, nextGlobal, unsetKeys(oldGlobal, nextGlobal))
	})
	if err == nil && clustered {
		err = d.cluster.UpdateLocalConfig(ctx, nextLocal, unsetKeys(oldLocal, nextLocal))
	}

	if err != nil {
		undo()
		return err
	}

	d.configMu.Lock()
	d.config = next
	d.configMu.Unlock()
	if old[keyRemoteCacheExpiry] != next[keyRemoteCacheExpiry] {
		pokeImageCachePruner()
	}

	d.events.SendLifecycle("default", "config-updated", "/1.0", nil)
	return nil
}
