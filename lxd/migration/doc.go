// Package migration speaks LXD's instance migration protocol (LXD 5.0's wire format), both
// ends, so that lxc copy/move work between two berthd and with LXD:
//
//   - Two websockets per transfer: "control" carries protobuf messages (migrate.proto),
//     one per binary websocket message; "fs" carries the filesystem as rsync's own
//     protocol, as binary messages, each direction of one rsync run ended by an empty
//     text message (a barrier).
//   - The source sends a MigrationHeader (the offer: RSYNC, its rsync features, its
//     snapshots with their config, devices and profiles, its id map); the target answers
//     with a MigrationHeader of what it accepts. With indexHeaderVersion 1 agreed, the
//     source first sends an index frame on fs (JSON, ended by a barrier) and the target
//     answers with one (JSON status); LXD 5.0's instance migration does not offer it,
//     and then there is none.
//   - Then one rsync run per snapshot (oldest first), then one for the instance's root
//     filesystem; the target ends with a MigrationControl (success, or the failure's
//     message), and either side may send a failing MigrationControl at any time.
//
// The trees are hostile both ways. The rsync sender runs as the source container (a user
// namespace mapped to its ids, chrooted into a jail that holds only /usr read-only and
// the tree read-only), so ids go on the wire as the container sees them (0..65535) and
// the header carries no id map, as LXD does for an unshifted tree. The receiver runs as
// the target container (a user namespace mapped to the target's new ids, chrooted into a
// jail whose only writable tree is the destination, idmapped onto the new pool image), so
// whatever the stream says, it can only write inside that tree and only owners within
// the target's range; ids outside the map fail the transfer. A sender's id map (LXD sends
// host ids and its map) is honoured by mapping those wire ids onto the same container
// ids.
package migration
