// Package gateway runs this member's node of the cluster database: a dqlite
// (replicated SQLite over raft) node started with go-dqlite's app package, and the
// database/sql handle through which lxd/db reaches the global database.
//
// It is the only importer of go-dqlite. go-dqlite v1.11.5 is pinned because it is
// the newest version that builds against Debian 12's libdqlite 1.11.1; build with
// -tags libsqlite3 so the process holds a single SQLite (the system's).
//
// Nodes talk raft and the client protocol over TLS on the member's raft address
// (RaftAddress: the API address with port+1), and trust exactly one certificate, the
// cluster certificate: every member presents it, as server and as client.
//
// The database/sql handle does not use the app package's driver: that driver probes
// members one after the other with 5 s dial and 15 s attempt timeouts, and keeps
// connections to a vanished leader in the pool, so a blackholed leader stops writes
// for minutes. Ours dials with a 200 ms timeout, gives each member 1 s and the whole
// leader search 3 s, discards a connection after any timeout, bounds COMMIT and
// ROLLBACK, and fails fast with ErrNoLeader when the local node knows no leader.
package gateway
