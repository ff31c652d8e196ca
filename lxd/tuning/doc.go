// Package tuning readies the host for many containers: at start berthd raises the kernel
// limits that every container shares (through the user-namespace hierarchy, where a
// container's inotify instances count against root's, or because the limit is global, as
// the neighbour table and pid space are) to production values, and its own RLIMIT_NOFILE.
// It never lowers a value, logs one line per change, and leaves the host alone when the
// server key core.host_tuning is false (or BERTH_HOST_TUNING=0). doc/host-tuning.md says
// which limits and why these values.
package tuning
