package main

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/units"
)

// column is one column of `berth list`.
type column struct {
	Name string
	Data func(api.InstanceFull) string
}

// defaultColumns is lxc's default minus L (location), which only shows in
// clusters.
const defaultColumns = "ns46tS"

// shorthandColumns maps lxc's one-letter column codes to columns.
var shorthandColumns = map[rune]column{
	'n': {"NAME", func(i api.InstanceFull) string { return i.Name }},
	's': {"STATE", func(i api.InstanceFull) string { return strings.ToUpper(i.Status) }},
	'4': {"IPV4", func(i api.InstanceFull) string { return addressColumn(i, "inet") }},
	'6': {"IPV6", func(i api.InstanceFull) string { return addressColumn(i, "inet6") }},
	't': {"TYPE", typeColumn},
	'S': {"SNAPSHOTS", func(i api.InstanceFull) string { return strconv.Itoa(len(i.Snapshots)) }},
	'a': {"ARCHITECTURE", func(i api.InstanceFull) string { return i.Architecture }},
	'c': {"CREATED AT", func(i api.InstanceFull) string { return listTime(i.CreatedAt) }},
	'l': {"LAST USED AT", func(i api.InstanceFull) string { return listTime(i.LastUsedAt) }},
	'd': {"DESCRIPTION", func(i api.InstanceFull) string { return i.Description }},
	'f': {"BASE IMAGE", func(i api.InstanceFull) string { return shortFingerprint(i.ExpandedConfig["volatile.base_image"]) }},
	'F': {"BASE IMAGE", func(i api.InstanceFull) string { return i.ExpandedConfig["volatile.base_image"] }},
	'p': {"PID", pidColumn},
	'N': {"PROCESSES", processesColumn},
	'P': {"PROFILES", func(i api.InstanceFull) string { return strings.Join(i.Profiles, "\n") }},
	'm': {"MEMORY USAGE", memoryColumn},
	'u': {"CPU USAGE", cpuColumn},
	'D': {"DISK USAGE", diskColumn},
	'b': {"STORAGE POOL", poolColumn},
	'e': {"PROJECT", func(i api.InstanceFull) string { return i.Project }},
	'L': {"LOCATION", func(i api.InstanceFull) string { return i.Location }},
}

// parseColumns reads a -c value: comma separated entries, each either a run
// of shorthand letters ("ns46") or a config key column
// "[config:]KEY[:NAME[:MAXWIDTH]]" (entries with a '.' or ':').
func parseColumns(spec string) ([]column, error) {
	if spec == "" {
		return nil, fmt.Errorf("empty column list")
	}

	cols := []column{}
	for _, entry := range strings.Split(spec, ",") {
		if entry == "" {
			return nil, fmt.Errorf("empty column entry in %q", spec)
		}

		if strings.ContainsAny(entry, ".:") {
			col, err := configColumn(entry)
			if err != nil {
				return nil, err
			}

			cols = append(cols, col)
			continue
		}

		for _, r := range entry {
			col, ok := shorthandColumns[r]
			if !ok {
				return nil, fmt.Errorf("unknown column shorthand char '%c' in %q", r, entry)
			}

			cols = append(cols, col)
		}
	}

	return cols, nil
}

func configColumn(entry string) (column, error) {
	entry = strings.TrimPrefix(entry, "config:")
	parts := strings.Split(entry, ":")
	if len(parts) > 3 || parts[0] == "" {
		return column{}, fmt.Errorf("invalid config column %q (want [config:]KEY[:NAME[:MAXWIDTH]])", entry)
	}

	key := parts[0]
	name := strings.ToUpper(key)
	if len(parts) > 1 && parts[1] != "" {
		name = parts[1]
	}

	maxWidth := -1
	if len(parts) > 2 {
		n, err := strconv.Atoi(parts[2])
		if err != nil || n < 0 {
			return column{}, fmt.Errorf("invalid max width %q in column %q", parts[2], entry)
		}

		maxWidth = n
	}

	return column{Name: name, Data: func(i api.InstanceFull) string {
		v := i.ExpandedConfig[key]
		if maxWidth >= 0 && len([]rune(v)) > maxWidth {
			v = string([]rune(v)[:maxWidth])
		}

		return v
	}}, nil
}

// isActive is lxc's test for "has runtime state worth showing".
func isActive(i api.InstanceFull) bool {
	return i.StatusCode != api.Stopped && i.StatusCode != api.Error
}

// addressColumn lists the global addresses of one family as "ADDR (IFNAME)",
// in reverse string order, one per line, as `lxc list` does.
func addressColumn(i api.InstanceFull, family string) string {
	if !isActive(i) || i.State == nil || i.State.Network == nil {
		return ""
	}

	addrs := []string{}
	for iface, nic := range i.State.Network {
		if nic.Type == "loopback" {
			continue
		}

		for _, addr := range nic.Addresses {
			if addr.Scope == "link" || addr.Scope == "local" || addr.Family != family {
				continue
			}

			addrs = append(addrs, fmt.Sprintf("%s (%s)", addr.Address, iface))
		}
	}

	sort.Sort(sort.Reverse(sort.StringSlice(addrs)))

	return strings.Join(addrs, "\n")
}

func typeColumn(i api.InstanceFull) string {
	t := i.Type
	if t == "" {
		t = api.InstanceTypeContainer
	}

	t = strings.ToUpper(t)
	if i.Ephemeral {
		t += " (EPHEMERAL)"
	}

	return t
}

func pidColumn(i api.InstanceFull) string {
	if !isActive(i) || i.State == nil || i.State.Pid == 0 {
		return ""
	}

	return strconv.FormatInt(i.State.Pid, 10)
}

func processesColumn(i api.InstanceFull) string {
	if !isActive(i) || i.State == nil {
		return ""
	}

	return strconv.FormatInt(i.State.Processes, 10)
}

func memoryColumn(i api.InstanceFull) string {
	if !isActive(i) || i.State == nil || i.State.Memory.Usage <= 0 {
		return ""
	}

	return units.BytesIEC(i.State.Memory.Usage)
}

func cpuColumn(i api.InstanceFull) string {
	if !isActive(i) || i.State == nil || i.State.CPU.Usage <= 0 {
		return ""
	}

	return fmt.Sprintf("%ds", i.State.CPU.Usage/1e9)
}

// rootDisk returns the name and config of the device mounted at /.
func rootDisk(i api.InstanceFull) (string, map[string]string) {
	names := make([]string, 0, len(i.ExpandedDevices))
	for n := range i.ExpandedDevices {
		names = append(names, n)
	}

	sort.Strings(names)
	for _, n := range names {
		d := i.ExpandedDevices[n]
		if d["type"] == "disk" && d["path"] == "/" {
			return n, d
		}
	}

	return "", nil
}

func diskColumn(i api.InstanceFull) string {
	name, _ := rootDisk(i)
	if i.State == nil || name == "" {
		return ""
	}

	d, ok := i.State.Disk[name]
	if !ok || d.Usage <= 0 {
		return ""
	}

	return units.BytesIEC(d.Usage)
}

func poolColumn(i api.InstanceFull) string {
	_, d := rootDisk(i)
	return d["pool"]
}

// listTime formats a time as lxc list does; unset times are blank.
func listTime(t time.Time) string {
	if t.Unix() <= 0 {
		return ""
	}

	return t.UTC().Format("2006/01/02 15:04 UTC")
}

func shortFingerprint(fp string) string {
	if len(fp) > 12 {
		return fp[:12]
	}

	return fp
}
