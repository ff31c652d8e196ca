package main

import "strings"

// lxdPairs says, for each LXD row, which words a Berth row must contain to be its
// counterpart (case-insensitive), best choice first. Rows of figures Berth does not
// measure go last.
var lxdPairs = map[string][][]string{
	"LXD: lxc launch (command returns)":        {{"launch", "command returns"}},
	"LXD: launch -> is-system-running=running": {{"launch ->", "running"}},
	"LXD: lxc stop (clean)":                    {{"stop"}},
	"LXD: start -> is-system-running=running":  {{"start ->", "running"}},
	// systemd's own record of each boot (boottime.go), as for Berth.
	"LXD: launch -> systemd starts":                         {{"launch -> systemd starts"}},
	"LXD: launch -> running (systemd's finish)":             {{"launch -> running (systemd's finish)"}},
	"LXD: launch: systemd userspace boot (systemd-analyze)": {{"launch: systemd userspace boot"}},
	"LXD: launch -> running / systemd userspace boot":       {{"launch -> running / systemd userspace boot"}},
	"LXD: start -> systemd starts":                          {{"start -> systemd starts"}},
	"LXD: start -> running (systemd's finish)":              {{"start -> running (systemd's finish)"}},
	"LXD: start: systemd userspace boot (systemd-analyze)":  {{"start: systemd userspace boot"}},
	"LXD: start -> running / systemd userspace boot":        {{"start -> running / systemd userspace boot"}},
	"LXD: " + parallelReturnedRow:                           {{"parallel launches (last command returns)"}},
	"LXD: " + parallelRunningRow:                            {{"parallel launches -> all running"}},
	"LXD: " + parallelBootsRow:                              {{"parallel launches: CPU of the boots ("}},
	"LXD: " + parallelFloorRow:                              {{"parallel launches: CPU of the boots /"}},
	"LXD: " + parallelOutsideRow:                            {{"parallel launches: CPU outside"}},
	"LXD: lxc list, 10 instances (10 running)":              {{"list", ", 10 instances"}},
	// Same client against both daemons first.
	"LXD: lxc exec NAME -- true":             {{"lxc exec"}, {"exec"}},
	"LXD: snapshot, running, 300 MB written": {{"snapshot"}},
	"LXD: restore, running":                  {{"restore"}},
	"LXD: copy, running, 300 MB written":     {{"copy"}},
}

// placeLXDRows moves each LXD row just after the Berth row that pairs with it, among
// the durations and among the ratios.
func placeLXDRows(r *report) {
	r.names = placeLXD(r.names)
	r.rnames = placeLXD(r.rnames)
}

func placeLXD(names []string) []string {
	lxd := []string{}
	berth := []string{}
	for _, n := range names {
		if strings.HasPrefix(n, "LXD: ") {
			lxd = append(lxd, n)
		} else {
			berth = append(berth, n)
		}
	}

	after := map[string][]string{} // Berth row → LXD rows to print after it
	rest := []string{}
	for _, l := range lxd {
		b := counterpart(l, berth)
		if b == "" {
			rest = append(rest, l)
			continue
		}

		after[b] = append(after[b], l)
	}

	out := []string{}
	for _, b := range berth {
		out = append(out, b)
		out = append(out, after[b]...)
	}

	return append(out, rest...)
}

// counterpart returns the first Berth row matching the best alternative for lxdRow.
func counterpart(lxdRow string, berth []string) string {
	for _, words := range lxdPairs[lxdRow] {
		for _, b := range berth {
			if containsAll(strings.ToLower(b), words) {
				return b
			}
		}
	}

	return ""
}

func containsAll(s string, words []string) bool {
	for _, w := range words {
		if !strings.Contains(s, strings.ToLower(w)) {
			return false
		}
	}

	return true
}
