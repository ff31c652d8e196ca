package main

import (
	"context"
	"time"
)

// trustRefresh is how often a cluster member reads the certificates again: a
// certificate removed or restricted through another member stops working here within
// it (the member that changed it applies the change at once).
const trustRefresh = 2 * time.Second

// refreshTrust keeps the trust store in step with the cluster's certificates table
// until ctx ends (issue 16 review: before, each member kept the certificates it had
// loaded, so a certificate revoked through one member kept its rights on the others).
func (d *Daemon) refreshTrust(ctx context.Context) {
	t := time.NewTicker(trustRefresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}

		rctx, cancel := context.WithTimeout(ctx, trustRefresh)
		_, err := d.trust.Refresh(rctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			d.log.Warn("reloading trusted certificates", "err", err)
		}

		// The same cadence takes in global server configuration changed through
		// another member.
		rctx, cancel = context.WithTimeout(ctx, trustRefresh)
		err = d.reloadGlobalConfig(rctx)
		cancel()
		if err != nil && ctx.Err() == nil {
			d.log.Warn("reloading server configuration", "err", err)
		}
	}
}
