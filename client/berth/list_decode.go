package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/shared/api"
)

// What a table of instances needs beyond the fields every row decodes.
const (
	needConfig  = 1 << iota // the expanded config (config columns, base image, KEY=VALUE filters)
	needDevices             // the expanded devices (disk usage, storage pool)
)

// listRecord is what `berth list` decodes of an instance for a table, csv or compact
// output: api.InstanceFull without what no column shows. Of a running container's 3.3 kB
// of JSON, its local config and devices (copies of the expanded ones), its NICs'
// counters and its snapshots' bodies are skipped; the expanded config and devices are
// kept as raw JSON and decoded only when a column or filter reads them. Decoding 500
// instances as api.InstanceFull was three quarters of `berth list`'s own CPU.
type listRecord struct {
	api.InstanceFull

	Config          skipJSON        `json:"config"`
	Devices         skipJSON        `json:"devices"`
	ExpandedConfig  json.RawMessage `json:"expanded_config"`
	ExpandedDevices json.RawMessage `json:"expanded_devices"`
	State           *listState      `json:"state"`
	Snapshots       []skipJSON      `json:"snapshots"`
	Backups         skipJSON        `json:"backups"`
}

// listState is api.InstanceState with only the addresses and type of each NIC.
type listState struct {
	api.InstanceState

	Network map[string]listNIC `json:"network"`
}

type listNIC struct {
	Addresses []api.InstanceStateNetworkAddress `json:"addresses"`
	Type      string                            `json:"type"`
}

// listNeeds is what of the expanded config and devices the columns (a -c value) and the
// filters read (see fieldValue and the columns).
func listNeeds(columns string, filters []string) int {
	needs := 0
	for _, entry := range strings.Split(columns, ",") {
		if strings.ContainsAny(entry, ".:") {
			needs |= needConfig
			continue
		}

		if strings.ContainsAny(entry, "fF") {
			needs |= needConfig
		}

		if strings.ContainsAny(entry, "Db") {
			needs |= needDevices
		}
	}

	for _, f := range filters {
		key, _, isKV := strings.Cut(f, "=")
		if isKV && !builtinField(key) {
			needs |= needConfig
		}
	}

	return needs
}

// builtinField reports whether a filter's key is one fieldValue reads outside the
// config (keep the two in step).
func builtinField(key string) bool {
	switch strings.ToLower(key) {
	case "name", "status", "state", "type", "architecture", "description", "location":
		return true
	}

	return false
}

// listOmit is what a list that needs needs asks the server to leave out of each
// instance: its config and devices (local and expanded) are two thirds of a running
// container's JSON, which berthd encodes and `berth list` decodes for nothing when no
// column or filter reads them.
func listOmit(needs int) []string {
	var omit []string
	if needs&needConfig == 0 {
		omit = append(omit, "config")
	}

	if needs&needDevices == 0 {
		omit = append(omit, "devices")
	}

	return omit
}

// skipJSON takes any JSON value and keeps nothing of it.
type skipJSON struct{}

func (*skipJSON) UnmarshalJSON([]byte) error { return nil }

// getListInstances fetches every instance (recursion=2) with what the columns and
// filters need (needs, a set of need* bits). berthd leaves the rest of the config and
// devices out of its answer (listOmit); LXD sends them, and they are skipped.
func getListInstances(ctx context.Context, c *client.Client, needs int) ([]api.InstanceFull, error) {
	recs := []listRecord{}
	err := c.GetInstancesFullInto(ctx, &recs, listOmit(needs)...)
	if err != nil {
		return nil, err
	}

	out := make([]api.InstanceFull, len(recs))
	for i := range recs {
		out[i], err = recs[i].full(needs)
		if err != nil {
			return nil, fmt.Errorf("decoding instance %q: %w", recs[i].Name, err)
		}
	}

	return out, nil
}

// full is the record as an api.InstanceFull, its expanded config and devices decoded
// if needs says so.
func (r *listRecord) full(needs int) (api.InstanceFull, error) {
	inst := r.InstanceFull
	if needs&needConfig != 0 && len(r.ExpandedConfig) > 0 {
		err := json.Unmarshal(r.ExpandedConfig, &inst.ExpandedConfig)
		if err != nil {
			return inst, err
		}
	}

	if needs&needDevices != 0 && len(r.ExpandedDevices) > 0 {
		err := json.Unmarshal(r.ExpandedDevices, &inst.ExpandedDevices)
		if err != nil {
			return inst, err
		}
	}

	if len(r.Snapshots) > 0 {
		inst.Snapshots = make([]api.InstanceSnapshot, len(r.Snapshots))
	}

	if r.State != nil {
		st := r.State.InstanceState
		st.Network = make(map[string]api.InstanceStateNetwork, len(r.State.Network))
		for name, nic := range r.State.Network {
			st.Network[name] = api.InstanceStateNetwork{Addresses: nic.Addresses, Type: nic.Type}
		}

		inst.State = &st
	}

	return inst, nil
}
