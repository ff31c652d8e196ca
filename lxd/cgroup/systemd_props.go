package cgroup

import (
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/godbus/dbus/v5"
)

// Slice is the systemd slice holding every container scope on hosts where
// systemd manages the cgroup2 tree: /sys/fs/cgroup/berth.slice.
const Slice = "berth.slice"

// unitNameMax is systemd's UNIT_NAME_MAX minus its NUL.
const unitNameMax = 255

// infinity is how systemd's D-Bus API spells "no limit" for the uint64
// properties used here (CGROUP_LIMIT_MAX, USEC_INFINITY).
const infinity = math.MaxUint64

// property is one entry of an a(sv) property array.
type property struct {
	Name  string
	Value dbus.Variant
}

// auxUnit is one entry of StartTransientUnit's a(sa(sv)) auxiliary units.
type auxUnit struct {
	Name  string
	Props []property
}

func prop(name string, v any) property {
	return property{Name: name, Value: dbus.MakeVariant(v)}
}

// UnitName is the transient scope of container name: "<parent>-<escaped>.scope"
// (parent: Layout.Parent, "" for DefaultParent).
func UnitName(parent, name string) string {
	if parent == "" {
		parent = DefaultParent
	}

	return parent + "-" + escapeUnitName(name) + ".scope"
}

// escapeUnitName does what systemd's unit_name_escape does: "/" becomes
// "-", and "-", "\", a leading "." and anything outside [0-9A-Za-z:_.]
// become \xNN. So a dash in a container name cannot be taken for a slice
// level, and the escaping is reversible.
func escapeUnitName(s string) string {
	var b strings.Builder

	for i := 0; i < len(s); i++ {
		c := s[i]

		switch {
		case c == '/':
			b.WriteByte('-')
		case c == '.' && i == 0:
			fmt.Fprintf(&b, `\x%02x`, c)
		case c >= '0' && c <= '9', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c == ':', c == '_', c == '.':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, `\x%02x`, c)
		}
	}

	return b.String()
}

// startProps are the properties of a container's new scope: pid in it,
// delegated, garbage-collected once stopped or failed, with limits l.
func startProps(name string, pid int, l Limits) ([]property, error) {
	lp, err := limitProps(l)
	if err != nil {
		return nil, err
	}

	props := []property{
		prop("Description", "Berth container "+name),
		prop("Slice", Slice),
		prop("Delegate", true),
		prop("PIDs", []uint32{uint32(pid)}),
		prop("CollectMode", "inactive-or-failed"),
	}

	return append(props, lp...), nil
}

// limitProps turns Limits into systemd resource-control properties. Every
// property is always sent, unset ones as "no limit", so a live update lifts
// earlier limits like the file-writing implementations do. Needs systemd
// 244+ (AllowedCPUs; CPUQuotaPeriodUSec is 242+).
func limitProps(l Limits) ([]property, error) {
	mem := uint64(infinity)
	if l.MemoryBytes > 0 {
		mem = uint64(l.MemoryBytes)
	}

	tasks := uint64(infinity)
	if l.PidsMax >= 0 {
		n, _ := strconv.ParseUint(pidsMax(l.PidsMax), 10, 64)
		tasks = n
	}

	cpu, err := planCPU(l)
	if err != nil {
		return nil, err
	}

	// systemd stores a quota per second of wall time and scales it to the
	// period itself when it writes cpu.max.
	quota := uint64(infinity)
	if cpu.quota > 0 {
		quota = uint64(cpu.quota) * 1_000_000 / uint64(cpu.period)
	}

	cpus, err := cpuMask(cpu.cpuset)
	if err != nil {
		return nil, err
	}

	return []property{
		prop("MemoryMax", mem),
		prop("TasksMax", tasks),
		prop("CPUQuotaPerSecUSec", quota),
		prop("CPUQuotaPeriodUSec", uint64(cpu.period)),
		prop("AllowedCPUs", cpus),
	}, nil
}

// cpuMask encodes a cpu list ("0-2,5") as systemd's AllowedCPUs bitmask:
// bit i%8 of byte i/8 is CPU i. An empty list is an empty mask, which
// systemd reads as "all CPUs of the parent".
func cpuMask(list string) ([]byte, error) {
	mask := []byte{}
	if list == "" {
		return mask, nil
	}

	for _, part := range strings.Split(list, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		if !isRange {
			hi = lo
		}

		first, err := strconv.ParseUint(lo, 10, 16)
		if err != nil {
			return nil, fmt.Errorf("parsing cpu list %q: %w", list, err)
		}

		last, err := strconv.ParseUint(hi, 10, 16)
		if err != nil || last < first {
			return nil, fmt.Errorf("parsing cpu list %q: bad range %q", list, part)
		}

		for c := first; c <= last; c++ {
			for len(mask) <= int(c/8) {
				mask = append(mask, 0)
			}

			mask[c/8] |= 1 << (c % 8)
		}
	}

	return mask, nil
}
