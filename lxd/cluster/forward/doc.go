// Package forward carries requests between cluster members: a request for an instance
// that lives on another member is relayed to that member over mutual TLS (HTTP and
// websocket upgrades alike) and its answer copied back unchanged; GET /1.0/instances is
// fanned out to every member, each answering for its own instances; every member's
// events are relayed to every other member; and an image file a member lacks is fetched
// from a member that has it.
//
// Two headers mark a relayed request. X-Berth-Forwarded names the member it came
// through: a request carrying it is answered locally, never relayed again, so no request
// can loop. X-Berth-Caller names the original caller (its certificate fingerprint, or
// "admin" for the unix socket) so that the receiving member applies that caller's trust
// and project restrictions, not the forwarding member's. Both are honoured only from a
// member (a caller presenting the cluster certificate); Sanitize strips them from
// anyone else.
//
// The package knows nothing of the daemon: it is given members (name and address), the
// member-to-member TLS configuration, and callbacks.
package forward
