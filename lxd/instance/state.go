package instance

import (
	"context"

	"github.com/berth-dev/berth/lxd/device"
	"github.com/berth-dev/berth/shared/api"
)

// State returns the runtime state of an instance.
func (m *Manager) State(ctx context.Context, name string) (*api.InstanceState, error) {
	_, err := m.exists(ctx, name)
	if err != nil {
		return nil, err
	}

	st := m.state(name, true)
	return &st, nil
}

// state reads what the monitor and the cgroups know. Without details only the status.
func (m *Manager) state(name string, details bool) api.InstanceState {
	st := api.InstanceState{
		Status:     api.Stopped.String(),
		StatusCode: api.Stopped,
		Disk:       map[string]api.InstanceStateDisk{},
		Network:    map[string]api.InstanceStateNetwork{},
	}

	mon := m.monitor(name)
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
	m.rootUsage(name, st.Disk)
	return st
}
