// Package sys holds facts about the host Berth runs on (cgroup layout, kernel
// version) and the sealed copy of the daemon's own executable used for re-exec.
package sys
