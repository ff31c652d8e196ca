package metrics

import (
	"runtime"
	"time"
)

// Daemon is what the daemon reports of itself besides its requests.
type Daemon struct {
	Uptime     time.Duration
	Operations int // operations not yet finished
}

// AddTo adds the daemon's uptime, operations and Go runtime figures, under LXD's names.
func (d Daemon) AddTo(set *Set) {
	set.Family("lxd_uptime_seconds", Gauge, "The daemon uptime in seconds.").Add(d.Uptime.Seconds())
	set.Family("lxd_operations_total", Gauge, "The number of running operations.").Add(float64(d.Operations))
	addGoRuntime(set)
}

// addGoRuntime adds runtime.MemStats as LXD names it (lxd_go_*). ReadMemStats stops the
// world for a few microseconds; it runs once per scrape.
func addGoRuntime(set *Set) {
	var m runtime.MemStats
	runtime.ReadMemStats(&m)

	gauges := []struct {
		name, help string
		v          uint64
	}{
		{"lxd_go_alloc_bytes", "Number of bytes allocated and still in use.", m.Alloc},
		{"lxd_go_buck_hash_sys_bytes", "Number of bytes used by the profiling bucket hash table.", m.BuckHashSys},
		{"lxd_go_gc_sys_bytes", "Number of bytes used for garbage collection system metadata.", m.GCSys},
		{"lxd_go_heap_alloc_bytes", "Number of heap bytes allocated and still in use.", m.HeapAlloc},
		{"lxd_go_heap_idle_bytes", "Number of heap bytes waiting to be used.", m.HeapIdle},
		{"lxd_go_heap_inuse_bytes", "Number of heap bytes that are in use.", m.HeapInuse},
		{"lxd_go_heap_objects", "Number of allocated objects.", m.HeapObjects},
		{"lxd_go_heap_released_bytes", "Number of heap bytes released to OS.", m.HeapReleased},
		{"lxd_go_heap_sys_bytes", "Number of heap bytes obtained from system.", m.HeapSys},
		{"lxd_go_mcache_inuse_bytes", "Number of bytes in use by mcache structures.", m.MCacheInuse},
		{"lxd_go_mcache_sys_bytes", "Number of bytes used for mcache structures obtained from system.", m.MCacheSys},
		{"lxd_go_mspan_inuse_bytes", "Number of bytes in use by mspan structures.", m.MSpanInuse},
		{"lxd_go_mspan_sys_bytes", "Number of bytes used for mspan structures obtained from system.", m.MSpanSys},
		{"lxd_go_next_gc_bytes", "Number of heap bytes when next garbage collection will take place.", m.NextGC},
		{"lxd_go_other_sys_bytes", "Number of bytes used for other system allocations.", m.OtherSys},
		{"lxd_go_stack_inuse_bytes", "Number of bytes in use by the stack allocator.", m.StackInuse},
		{"lxd_go_stack_sys_bytes", "Number of bytes obtained from system for stack allocator.", m.StackSys},
		{"lxd_go_sys_bytes", "Number of bytes obtained from system.", m.Sys},
	}

	for _, g := range gauges {
		set.Family(g.name, Gauge, g.help).Add(float64(g.v))
	}

	counters := []struct {
		name, help string
		v          uint64
	}{
		{"lxd_go_alloc_bytes_total", "Total number of bytes allocated, even if freed.", m.TotalAlloc},
		{"lxd_go_frees_total", "Total number of frees.", m.Frees},
		{"lxd_go_lookups_total", "Total number of pointer lookups.", m.Lookups},
		{"lxd_go_mallocs_total", "Total number of mallocs.", m.Mallocs},
	}

	for _, c := range counters {
		set.Family(c.name, Counter, c.help).Add(float64(c.v))
	}

	set.Family("lxd_go_goroutines", Gauge, "Number of goroutines that currently exist.").Add(float64(runtime.NumGoroutine()))
}
