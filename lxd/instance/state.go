package instance

import (
	"context"

	"github.com/berth-dev/berth/lxd/device"
	"github.com/berth-dev/berth/shared/api"
)

// State returns the runtime state of an instance.
func (vw *View) State(ctx context.Context, name string) (*api.InstanceState, error) {
	_, err := vw.host.exists(ctx, name)
	if err != nil {
		return nil, err
	}

	st := vw.state(name, true)
	return &st, nil
}

// state reads what the monitor and the cgroups know. Without details only the status.
func (vw *View) state(name string, details bool) api.InstanceState {
	st := api.InstanceState{
		Status:     api.Stopped.String(),
		StatusCode: api.Stopped,
		Disk:       map[string]api.InstanceStateDisk{},
		Network:    map[string]api.InstanceStateNetwork{},
	}

	mon := vw.host.monitor(name)
	if mon == nil {
		return st
	}

	st.Status, st.StatusCode = api.Running.String(), api.Running
	if mon.Frozen() {
		st.Status, st.StatusCode = api.Frozen.String(), api.Frozen
	}

	if !details {
		return st
	}

	st.Pid = int64(mon.InitPID())
	stats, err := mon.Stats()
	if err == nil {
		st.Processes = int64(stats.Processes)
		st.CPU.Usage = stats.CPUNanos
		st.Memory.Usage = stats.MemoryBytes
	}

	st.Network = device.NetworkState(mon.InitPID())
	vw.rootUsage(name, st.Disk)
	return st
}

// rootUsage adds the root disk's usage to a state where the pool accounts it.
func (vw *View) rootUsage(name string, disks map[string]api.InstanceStateDisk) {
	n, err := vw.pool.RootUsage(name)
	if err == nil {
		disks["root"] = api.InstanceStateDisk{Usage: n}
	}
}
