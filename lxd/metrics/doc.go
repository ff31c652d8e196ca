// Package metrics builds GET /1.0/metrics: the OpenMetrics text exposition with LXD's
// metric names and labels, so dashboards and alerts written for LXD work unchanged.
//
// Instance metrics (CPU, memory, block I/O, root filesystem, network, processes) are
// read from the cgroups (through lxd/cgroup), the host ends of the veths (one netlink
// dump through lxd/ip) and statfs of each root filesystem. One collection reads each
// running instance once and is served for DefaultTTL to every scrape that comes meanwhile;
// concurrent scrapes wait for the same collection. The daemon's own metrics (uptime,
// operations, API requests and their latency, Go runtime) are rendered fresh per scrape.
//
// The text format is written here rather than with prometheus/client_golang: the names
// must be LXD's (lxd_go_* from runtime.MemStats, lxd_memory_MemTotal_bytes...), which the
// library's Go collector and naming checks do not produce, and the instance part is a byte
// buffer rebuilt once per TTL rather than a registry gathered per scrape. The format is
// small; promtool and a real Prometheus check the output in the tests.
package metrics
