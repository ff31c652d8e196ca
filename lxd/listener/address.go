package listener

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// DefaultPort is the HTTPS port when an address names none (LXD's).
const DefaultPort = 8443

// Canonical turns a listen address as core.https_address takes it ("", ":8443",
// "127.0.0.1", "[::1]:9443", "::", "0.0.0.0:8443") into host:port, defaulting the port.
// The host must be empty (every address) or an IP address.
func Canonical(address string, defaultPort int) (string, error) {
	address = strings.TrimSpace(address)
	if address == "" {
		return "", nil
	}

	host, port, err := net.SplitHostPort(address)
	if err != nil {
		// No port: a bare IPv4, IPv6 (with or without brackets) or empty host.
		host, port = strings.TrimSuffix(strings.TrimPrefix(address, "["), "]"), strconv.Itoa(defaultPort)
	}

	if host != "" && net.ParseIP(host) == nil {
		return "", fmt.Errorf("%q is not an IP address (listen addresses are IP[:PORT] or :PORT)", host)
	}

	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return "", fmt.Errorf("%q is not a port", port)
	}

	return net.JoinHostPort(host, strconv.Itoa(n)), nil
}

// Addresses lists the host:port pairs clients can reach a listener bound to addr on:
// addr itself for a specific IP, else every global unicast address of the host's
// interfaces (as LXD lists them in GET /1.0 and join tokens).
func Addresses(addr net.Addr) []string {
	tcp, ok := addr.(*net.TCPAddr)
	if !ok {
		return []string{}
	}

	port := strconv.Itoa(tcp.Port)
	if !tcp.IP.IsUnspecified() {
		return []string{net.JoinHostPort(tcp.IP.String(), port)}
	}

	out := []string{}
	v4only := tcp.IP.To4() != nil
	for _, ip := range hostAddresses() {
		if !ip.IsGlobalUnicast() || (v4only && ip.To4() == nil) {
			continue
		}

		out = append(out, net.JoinHostPort(ip.String(), port))
	}

	return out
}

// Source is the source a remote address counts as for per-source limits: an IPv4
// address, or an IPv6 address's /64 (one host usually holds a whole /64).
func Source(addr net.Addr) string {
	var ip net.IP
	switch a := addr.(type) {
	case *net.TCPAddr:
		ip = a.IP
	default:
		host, _, err := net.SplitHostPort(addr.String())
		if err != nil {
			return addr.String()
		}

		ip = net.ParseIP(host)
		if ip == nil {
			return host
		}
	}

	return SourceOfIP(ip)
}

// SourceOfIP is Source for an IP address.
func SourceOfIP(ip net.IP) string {
	if ip4 := ip.To4(); ip4 != nil {
		return ip4.String()
	}

	return (&net.IPNet{IP: ip.Mask(net.CIDRMask(64, 128)), Mask: net.CIDRMask(64, 128)}).String()
}
