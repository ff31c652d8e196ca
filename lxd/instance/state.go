package instance

import (
	"context"
	"runtime"
	"sync/atomic"

	"github.com/berth-dev/berth/lxd/cgroup"
	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/device"
	"github.com/berth-dev/berth/lxd/ip"
	"github.com/berth-dev/berth/lxd/parallel"
	"github.com/berth-dev/berth/shared/api"
)

// State returns the runtime state of an instance.
func (vw *View) State(ctx context.Context, name string) (*api.InstanceState, error) {
	inst, profiles, err := vw.host.load(ctx, name)
	if err != nil {
		return nil, err
	}

	states := vw.gathered([]expanded{expand(inst, profiles)})
	st := vw.state(name, states)
	return &st, nil
}

// state is an instance's status, from its monitor (running, frozen) or the lack of one,
// with the gathered details of a running one (gathered; nil: the status alone).
func (vw *View) state(name string, gathered map[string]api.InstanceState) api.InstanceState {
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

	if g, ok := gathered[name]; ok {
		st = g
	}

	st.Status, st.StatusCode = api.Running.String(), api.Running
	if mon.Frozen() {
		st.Status, st.StatusCode = api.Frozen.String(), api.Frozen
	}

	return st
}

// expand is an instance with its expanded config and devices (load.go's expanded,
// without the id map, which reading state does not need).
func expand(inst *db.Instance, profiles map[string]*db.Profile) expanded {
	config, devices := Expand(inst, profiles)
	return expanded{inst: inst, config: config, devices: devices}
}

// gathered returns the details of those of exps that run, from the state cache. The
// gathering only reads their expanded maps, and is over when it returns.
func (vw *View) gathered(exps []expanded) map[string]api.InstanceState {
	reqs := make([]gatherReq, 0, len(exps))
	for _, e := range exps {
		mon := vw.host.monitor(e.inst.Name)
		if mon == nil {
			continue
		}

		reqs = append(reqs, gatherReq{name: e.inst.Name, mon: mon, config: e.config, devices: e.devices})
	}

	if len(reqs) == 0 {
		return nil
	}

	return vw.cache.get(reqs)
}

// gather reads the state of running instances from the host, never from their monitors
// or inside their namespaces: the init pid the monitor handle keeps, the cgroup files
// (cgroup.ReadStats), the host ends of their NICs in one link dump plus an address dump
// of each namespace (device.NetworkState), and the pool's accounting of the root disk.
//
// Nearly all of it is system calls (~190 us an instance on the development VM), each
// instance's independent of the others': a big list is read on every CPU, each worker
// with its own netlink socket. A list of 60 that found the cache stale took 12-14 ms
// there, against 14.6-16.3 ms on one CPU (the dumps share kernel locks).
func (vw *View) gather(reqs []gatherReq) map[string]api.InstanceState {
	r := ip.NewNetlinkReader()
	defer r.Close()

	var links map[string]ip.HostLink
	if hasNIC(reqs) {
		links, _ = r.HostLinks()
	}

	// A worker's panic is the request's, as when the request's goroutine gathered:
	// net/http recovers it there, and the state cache releases its waiters.
	states := make([]api.InstanceState, len(reqs))
	workers := max(1, min(runtime.GOMAXPROCS(0), (len(reqs)+minGatherShare-1)/minGatherShare))
	var next atomic.Int64
	parallel.Run(workers, func(w int) {
		reader := r
		if w > 0 {
			reader = ip.NewNetlinkReader()
			defer reader.Close()
		}

		for i := int(next.Add(1) - 1); i < len(reqs); i = int(next.Add(1) - 1) {
			states[i] = vw.gatherOne(reader, links, reqs[i])
		}
	})

	out := make(map[string]api.InstanceState, len(reqs))
	for i, q := range reqs {
		out[q.name] = states[i]
	}

	return out
}

// minGatherShare is the fewest instances worth a gathering worker of their own: below
// it, starting one (and opening its netlink socket) costs about what it saves.
const minGatherShare = 8

// gatherOne reads one running instance's state; links is the host's link dump (nil: no
// NIC to report).
func (vw *View) gatherOne(r *ip.NetlinkReader, links map[string]ip.HostLink, q gatherReq) api.InstanceState {
	st := api.InstanceState{Disk: map[string]api.InstanceStateDisk{}, Network: map[string]api.InstanceStateNetwork{}}
	st.Pid = int64(q.mon.InitPID())
	stats, err := cgroup.ReadStats(vw.cgroupParent, q.name)
	if err == nil {
		st.Processes = int64(stats.Processes)
		st.CPU.Usage = stats.CPUNanos
		st.Memory.Usage = stats.MemoryBytes
	}

	if links != nil {
		st.Network = device.NetworkState(r, links, q.devices, q.config)
	}

	vw.rootUsage(q.name, q.devices, st.Disk)
	return st
}

func hasNIC(reqs []gatherReq) bool {
	for _, q := range reqs {
		for _, d := range q.devices {
			if d["type"] == "nic" {
				return true
			}
		}
	}

	return false
}

// rootUsage adds the root disk's usage to a state where the pool accounts it.
func (vw *View) rootUsage(name string, devices map[string]map[string]string, disks map[string]api.InstanceStateDisk) {
	pool, err := vw.pools.of(devices)
	if err != nil {
		return
	}

	n, err := pool.RootUsage(name)
	if err == nil {
		disks["root"] = api.InstanceStateDisk{Usage: n}
	}
}
