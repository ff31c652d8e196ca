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
// BEGIN and the statements of a transaction get 1 s each whatever the caller's
// deadline, and their expiry is a driver.ErrBadConn (retried on a new connection):
// a pooled connection to a silent leader otherwise held a write for the whole
// transaction deadline. A node without a leader that cannot reach a majority of the
// voters fails at once (ErrQuorumLost), so a lost quorum answers in well under 1 s.
//
// In TLS mode go-dqlite v1.11.5's app package runs the engine itself, without TLS,
// on an abstract unix socket of the member's network namespace
// ("@snap.berth-<pid>-<n>.dqlite-<id>", see newApp), and proxies the raft port to it.
// Abstract sockets have no file permissions, so the guard is libdqlite's: it accepts
// on such a socket only connections whose peer (SO_PEERCRED, in its own pid
// namespace) is its own process, and closes the others at once.
// TestLocalSocketAttack proves it for the installed libdqlite (1.11.1): another
// process, as nobody, as root, or as pid 1 of a user and pid namespace of its own,
// neither learns the leader nor reads nor writes the global database, while the same
// client code in the node's process, or relayed by it, does. If a libdqlite upgrade
// drops that check, the test fails; the fix then is to tunnel dqlite through the HTTPS
// port (app.WithExternalConn, as LXD does) or to bind the engine in a network
// namespace of its own.
package gateway
