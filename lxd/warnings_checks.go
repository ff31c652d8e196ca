package main

import (
	"context"
	"fmt"

	"github.com/berth-dev/berth/lxd/ip"
	"github.com/berth-dev/berth/lxd/tuning"
	"github.com/berth-dev/berth/lxd/warnings"
)

// checkHost records, at start, the host problems berthd noticed as warnings, and marks
// resolved those of earlier starts that are gone: limits host tuning could not raise, and
// kernel features containers will miss.
func (d *Daemon) checkHost(ctx context.Context, tuned tuning.Report) {
	if tuned.Tried {
		seen := []string{}
		for _, l := range tuned.Low {
			entity := "sysctl " + l.Key
			seen = append(seen, entity)
			d.warnings.Record(ctx, warnings.HostLimitLow, entity,
				fmt.Sprintf("%s is %d, below the production value %d (fewer containers will boot): %v", l.Key, l.Old, l.Want, l.Err))
		}

		d.warnings.ResolveOthers(ctx, warnings.HostLimitLow, seen)
		if tuned.Nofile != nil {
			d.warnings.Record(ctx, warnings.NofileLimitLow, "berthd RLIMIT_NOFILE", "berthd's open file limit stays below production: "+tuned.Nofile.Error())
		} else {
			d.warnings.Resolve(ctx, warnings.NofileLimitLow, "berthd RLIMIT_NOFILE")
		}
	}

	var missing []string
	if !ip.IPv6Available() {
		missing = append(missing, "ipv6")
		d.warnings.Record(ctx, warnings.MissingFeature, "ipv6", "IPv6 is disabled on this host: networks get no IPv6")
	}

	if d.cgroups.Warning != "" {
		missing = append(missing, "cgroup delegation")
		d.warnings.Record(ctx, warnings.MissingFeature, "cgroup delegation", d.cgroups.Warning)
	}

	d.warnings.ResolveOthers(ctx, warnings.MissingFeature, missing)
}

// checkNetworks records a managed network that did not start, and resolves the warning
// of one that now runs.
func (d *Daemon) checkNetworks(ctx context.Context) {
	failed := []string{}
	for _, name := range d.networks.Errored() {
		url := "/1.0/networks/" + name
		failed = append(failed, url)
		d.warnings.Record(ctx, warnings.NetworkFailed, url, fmt.Sprintf("network %s did not start; see berthd's log", name))
	}

	d.warnings.ResolveOthers(ctx, warnings.NetworkFailed, failed)
}
