// Package firewall programs Berth's nftables rules through netlink (google/nftables): per
// bridge network, an inet table "berth-<bridge>" with the outbound masquerade of both
// families, and a bridge table "berth-<bridge>" holding one chain per container port that
// drops frames sent with another MAC, IPv4 or IPv6 address than the port's own (IPv6
// link-local aside), and a container's attempts to configure or mislead its neighbours
// (DHCP, DHCPv6 and router advertisements, neighbour advertisements for others'
// addresses). Tables are Berth's alone: created, replaced and deleted whole, never shared
// with other software's rules.
package firewall

// TablePrefix starts the name of every table Berth owns.
const TablePrefix = "berth-"

// TableName is the name of a bridge network's tables (the same in both families).
func TableName(bridge string) string { return TablePrefix + bridge }
