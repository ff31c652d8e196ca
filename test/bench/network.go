package main

import (
	"fmt"
	"time"

	"github.com/berth-dev/berth/lxd/ip"
)

// benchNetwork measures, per launch: the time until eth0 holds its DHCP address and its
// usable IPv6 SLAAC address (read with netlink in the container's namespace), next to
// launch -> running for the same containers; then launch -> running and the command's own time without a NIC
// (--no-profiles: root disk only), for the NIC's extra cost.
func benchNetwork(b *berthd, r *report) {
	err := runNetworkBench(b, r)
	if err != nil {
		r.note("network bench: %v", err)
	}
}

func runNetworkBench(b *berthd, r *report) error {
	before := 0
	for i := 0; i < *runs; i++ {
		name := fmt.Sprintf("nw%d", i)
		t0 := time.Now()
		_, err := b.berth("launch", "debian/12", name)
		if err != nil {
			return err
		}

		r.add("net: berth launch with eth0 (returns)", time.Since(t0))
		pid, err := b.initPID(name)
		if err != nil {
			return err
		}

		addr, addr6 := make(chan time.Duration, 1), make(chan time.Duration, 1)
		go func() { addr <- waitAddress(pid, t0, "inet") }()
		go func() { addr6 <- waitAddress(pid, t0, "inet6") }()
		err = waitRunning(pid)
		if err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}

		running := time.Since(t0)
		held := <-addr
		if held <= 0 {
			return fmt.Errorf("%s: no DHCP address within 30 s", name)
		}

		if held <= running {
			before++
		}

		r.add("net: launch -> DHCP address held", held)
		r.add("net: launch -> running (with eth0)", running)
		if held6 := <-addr6; held6 > 0 {
			r.add("net: launch -> IPv6 SLAAC address usable", held6)
		}
	}

	r.note("network: the address was held before is-system-running returned in %d of %d launches", before, *runs)

	for i := 0; i < *runs; i++ {
		name := fmt.Sprintf("nn%d", i)
		t0 := time.Now()
		_, err := b.berth("launch", "debian/12", name, "--no-profiles")
		if err != nil {
			return err
		}

		r.add("net: berth launch without NIC (returns)", time.Since(t0))
		_, err = b.waitInstance(name)
		if err != nil {
			return err
		}

		r.add("net: launch -> running (no NIC)", time.Since(t0))
	}

	for i := 0; i < *runs; i++ {
		_, _ = b.berth("delete", "-f", fmt.Sprintf("nw%d", i))
		_, _ = b.berth("delete", "-f", fmt.Sprintf("nn%d", i))
	}

	return nil
}

// waitAddress polls eth0 in pid's network namespace for a usable global address of family
// ("inet", "inet6": past duplicate address detection) and returns the time since t0, or 0
// after 30 s.
func waitAddress(pid int, t0 time.Time, family string) time.Duration {
	deadline := t0.Add(30 * time.Second)
	for time.Now().Before(deadline) {
		ifaces, _ := ip.Interfaces(pid)
		for _, it := range ifaces {
			for _, a := range it.Addrs {
				if it.Name == "eth0" && a.Family == family && a.Scope == "global" && !a.Tentative {
					return time.Since(t0)
				}
			}
		}

		time.Sleep(2 * time.Millisecond)
	}

	return 0
}
