package metrics

// Promtool's lint complaints. Both texts are promtool's own.
const (
	lintCamelCase   = "metric names should be written in 'snake_case' not 'camelCase'"
	lintGaugeSuffix = `non-counter metrics should not have "_total" suffix`
)

// PromtoolExceptions are the complaints `promtool check metrics` makes about names taken
// from LXD unchanged, so that dashboards and alerts written for LXD find them: LXD names
// some memory figures after /proc/meminfo (MemTotal) and some gauges with "_total" (a
// number of processes, of CPUs, of running operations: all can go down, so they are
// gauges here, not counters). Tests accept these complaints and no others.
var PromtoolExceptions = map[string]string{
	"lxd_memory_MemAvailable_bytes": lintCamelCase,
	"lxd_memory_MemFree_bytes":      lintCamelCase,
	"lxd_memory_MemTotal_bytes":     lintCamelCase,
	"lxd_procs_total":               lintGaugeSuffix,
	"lxd_cpu_effective_total":       lintGaugeSuffix,
	"lxd_operations_total":          lintGaugeSuffix,
}
