// Package cluster is the membership core of a clustered Berth (issue 16): which member
// this daemon is (local.db), the cluster certificate every member serves and presents
// to the others, turning a single host into a one-member cluster (enable), join tokens,
// and the two sides of a join (the joiner's request and the member's accept).
//
// A host never clustered has no local.db and runs exactly as before: Open then reports
// Enabled() false and Self() is member 1, "none". The dqlite node itself is
// lxd/cluster/gateway's; this package only tells it when to bootstrap, join or open.
package cluster
