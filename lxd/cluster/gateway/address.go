package gateway

import (
	"fmt"
	"net"
	"strconv"
)

// RaftAddress returns the dqlite/raft address that belongs to a member's API address:
// the same host, port+1.
func RaftAddress(apiAddr string) (string, error) {
	host, port, err := net.SplitHostPort(apiAddr)
	if err != nil {
		return "", fmt.Errorf("parsing member address %q: %w", apiAddr, err)
	}

	if host == "" {
		return "", fmt.Errorf("member address %q has no host", apiAddr)
	}

	p, err := strconv.Atoi(port)
	if err != nil || p < 1 || p >= 65535 {
		return "", fmt.Errorf("member address %q: port must be between 1 and 65534", apiAddr)
	}

	return net.JoinHostPort(host, strconv.Itoa(p+1)), nil
}
