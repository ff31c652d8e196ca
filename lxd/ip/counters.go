package ip

import "fmt"

// HostCounters returns the traffic counters of every link of the host's network namespace,
// by name, in one netlink dump: the metrics read a thousand containers' veths at once.
func HostCounters() (map[string]Counters, error) {
	links, err := linkList()
	if err != nil {
		return nil, fmt.Errorf("listing links: %w", err)
	}

	out := make(map[string]Counters, len(links))
	for _, l := range links {
		out[l.Attrs().Name] = ifaceOf(l).Counters
	}

	return out, nil
}

// Swapped is the other end's view of a veth's counters: what the host end received, the
// container end sent.
func (c Counters) Swapped() Counters {
	return Counters{
		RxBytes: c.TxBytes, TxBytes: c.RxBytes, RxPackets: c.TxPackets, TxPackets: c.RxPackets,
		RxErrors: c.TxErrors, TxErrors: c.RxErrors, RxDropped: c.TxDropped, TxDropped: c.RxDropped,
	}
}
