package main

import (
	"compress/gzip"
	"context"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/berth-dev/berth/lxd/cgroup"
	"github.com/berth-dev/berth/lxd/instance"
	"github.com/berth-dev/berth/lxd/metrics"
	"github.com/berth-dev/berth/lxd/response"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
)

// apiRequests counts every request the router serves (router() wraps it).
var apiRequests metrics.Requests

// metricsState holds the daemon's collector, made on the first scrape.
type metricsState struct {
	once      sync.Once
	collector *metrics.Collector
}

func (d *Daemon) metricsCollector() *metrics.Collector {
	d.metrics.once.Do(func() {
		layout := d.cgroups
		layout.Parent = cgroup.ParentFor(d.dir)
		d.metrics.collector = metrics.NewCollector(metrics.Config{List: d.metricsInstances, Cgroups: layout, Log: d.log})
	})

	return d.metrics.collector
}

// metricsGet serves GET /1.0/metrics: OpenMetrics text, gzipped when the client accepts it
// (Prometheus does).
func metricsGet(d *Daemon, r *http.Request) response.Response {
	var own metrics.Set
	metrics.Daemon{Uptime: time.Since(d.startedAt), Operations: d.runningOperations()}.AddTo(&own)
	apiRequests.AddTo(&own)

	body, err := d.metricsCollector().Render(r.Context(), &own)
	if err != nil {
		return response.SmartError(err)
	}

	gz := strings.Contains(r.Header.Get("Accept-Encoding"), "gzip")

	return response.ManualResponse(func(w http.ResponseWriter) error {
		w.Header().Set("Content-Type", metrics.ContentType)
		if !gz {
			_, err := w.Write(body)
			return err
		}

		w.Header().Set("Content-Encoding", "gzip")
		zw, _ := gzip.NewWriterLevel(w, gzip.BestSpeed)
		_, err := zw.Write(body)
		if err != nil {
			return err
		}

		return zw.Close()
	})
}

func (d *Daemon) runningOperations() int {
	n := 0
	for _, op := range d.ops.List() {
		s := op.Status()
		if s == api.Pending || s == api.Running || s == api.Cancelling {
			n++
		}
	}

	return n
}

// metricsInstances lists this member's instances with what the collector reads of them:
// the host end of each NIC's veth and the mounted root filesystem. (LXD's metrics are
// per member too.)
func (d *Daemon) metricsInstances(ctx context.Context) ([]metrics.Instance, error) {
	list, err := d.instances.ListLocal(ctx, false)
	if err != nil {
		return nil, err
	}

	out := make([]metrics.Instance, 0, len(list))
	for _, i := range list {
		mi := metrics.Instance{Name: project.Key(i.Project, i.Name), Status: i.Status} // its cgroup is named after the key
		for dev, conf := range i.ExpandedDevices {
			if conf["type"] != "nic" {
				continue
			}

			name := conf["name"]
			if name == "" {
				name = dev
			}

			mi.NICs = append(mi.NICs, metrics.NIC{Device: name, HostName: i.ExpandedConfig["volatile."+dev+".host_name"]})
		}

		slices.SortFunc(mi.NICs, func(a, b metrics.NIC) int { return strings.Compare(a.Device, b.Device) })
		pool, err := d.pools.Driver(instance.RootPool(i.ExpandedDevices, d.poolName))
		if err == nil {
			mps := pool.Mountpoints(project.Key(i.Project, i.Name))
			if len(mps) > 0 {
				mi.RootFS = mps[0]
			}
		}

		out = append(out, mi)
	}

	return out, nil
}
