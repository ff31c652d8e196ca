package instance

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"strings"

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

	st.Network = netState(mon.InitPID())
	m.rootUsage(name, st.Disk)
	return st
}

// netCounters reads the interface counters of the instance's network namespace from
// /proc/<init>/net/dev; addresses come with the managed network.
func netCounters(pid int) map[string]api.InstanceStateNetwork {
	out := map[string]api.InstanceStateNetwork{}
	f, err := os.Open(fmt.Sprintf("/proc/%d/net/dev", pid))
	if err != nil {
		return out
	}

	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		name, rest, ok := strings.Cut(s.Text(), ":")
		if !ok {
			continue
		}

		name = strings.TrimSpace(name)
		var rb, rp, re, rd, x1, x2, x3, x4, tb, tp, te, td int64
		_, err := fmt.Sscan(rest, &rb, &rp, &re, &rd, &x1, &x2, &x3, &x4, &tb, &tp, &te, &td)
		if err != nil {
			continue
		}

		n := api.InstanceStateNetwork{
			Addresses: []api.InstanceStateNetworkAddress{},
			State:     "up",
			Type:      "broadcast",
			Counters: api.InstanceStateNetworkCounters{
				BytesReceived: rb, PacketsReceived: rp, ErrorsReceived: re, PacketsDroppedInbound: rd,
				BytesSent: tb, PacketsSent: tp, ErrorsSent: te, PacketsDroppedOutbound: td,
			},
		}

		if name == "lo" {
			n.Type = "loopback"
		}

		out[name] = n
	}

	return out
}
