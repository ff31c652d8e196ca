// Package ip wraps the netlink calls Berth makes on links, bridges, veth pairs, addresses
// and routes. It is the only importer of vishvananda/netlink: everything else speaks in
// names, net.IP and net.IPNet.
package ip
