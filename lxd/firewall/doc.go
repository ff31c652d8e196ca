// Package firewall programs Berth's nftables rules through netlink (google/nftables): per
// bridge network, an inet table "berth-<bridge>" with the outbound masquerade of both
// families, and a bridge table "berth-<bridge>" holding one chain per container port that
// lets through only ARP, IPv4 and IPv6 sent with the port's own MAC and addresses (its
// IPv4 address, its SLAAC and EUI-64 link-local IPv6 addresses; 0.0.0.0 and :: only for
// what needs them: DHCP for its own MAC, ARP probes, duplicate address detection, router
// solicitations, MLD), and drops a container's attempts to configure or mislead its
// neighbours (DHCP, DHCPv6 and router advertisements, neighbour discovery for others'
// addresses or with another link-layer address, DHCP messages for another MAC). Tables
// are Berth's alone. The bridge table's base chain finds a port's chain in a verdict map
// keyed by interface name ("ports"), so a frame costs one lookup and adding or deleting a
// port touches one element, however many ports the bridge has; the port's ACL key rides on
// its chain's first rule (acls.go has the ACL maps). Tables
// are Berth's alone: created, replaced and deleted whole, never shared with other
// software's rules.
package firewall

// TablePrefix starts the name of every table Berth owns.
const TablePrefix = "berth-"

// TableName is the name of a bridge network's tables (the same in both families).
func TableName(bridge string) string { return TablePrefix + bridge }
