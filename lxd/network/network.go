// Package network runs Berth's managed networks. A Network is one driver instance (only
// "bridge" for now): it owns a host bridge, its address, its nftables tables, its dnsmasq,
// and the DHCP reservations of the NICs attached to it. The package keeps no database: the
// daemon stores configs and calls Create/Load/Update/Delete.
package network

import (
	"net"
)

// Network is a managed network.
type Network interface {
	Name() string
	Type() string
	// Config is the full config, defaults filled in.
	Config() map[string]string
	// Status is LXD's network status: "Created", or "Errored" when the last Start failed.
	Status() string

	// Start brings the network up or adopts what is already up (a daemon restart): the
	// bridge, address, firewall and a running dnsmasq are kept as they are.
	Start() error
	// Update applies a new, validated config.
	Update(config map[string]string) error
	// Delete tears everything down: dnsmasq, firewall tables, bridge, files.
	Delete() error
	// Close stops supervising; everything keeps running (daemon shutdown).
	Close()

	// Gateway is the network's own address: router and DNS server of its NICs.
	Gateway() net.IP
	// Domain is the DNS domain instances are registered under.
	Domain() string

	// Reserve gives owner (an "<instance>.<device>" key) a static DHCP lease for mac,
	// registered in DNS as hostname: want if set, else its previous address, else a free one.
	Reserve(owner, hostname string, mac net.HardwareAddr, want net.IP) (net.IP, error)
	// Release forgets the reservations of owner, or of every owner whose key starts with
	// it when it ends with "." ("c1." is all of instance c1's NICs, "c1.eth1" just one).
	Release(owner string) error
	// PortAdd attaches filtering to a host veth: it may only send as mac and ip, and the
	// network's ACLs and acl (its NIC's own) apply to it.
	PortAdd(port string, mac net.HardwareAddr, ip net.IP, acl PortACL) error
	// PortDel removes a port's filtering.
	PortDel(port string) error
}

// Types lists the network types Berth can create.
var Types = []string{"bridge"}
