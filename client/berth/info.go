package main

import (
	"fmt"
	"io"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/units"
)

func newInfoCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "info [REMOTE:]NAME",
		Short: "Show instance information",
		Args:  rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, name, err := a.instanceTarget(args[0])
			if err != nil {
				return err
			}

			inst, _, err := c.GetInstanceFull(cmd.Context(), name)
			if err != nil {
				return err
			}

			return renderInfo(a.out, inst)
		},
	}
}

// infoTime is lxc info's time format (local time).
func infoTime(t time.Time) string {
	return t.Local().Format("2006/01/02 15:04 MST")
}

// renderInfo prints an instance like `lxc info NAME`.
func renderInfo(w io.Writer, inst *api.InstanceFull) error {
	var b strings.Builder

	typ := inst.Type
	if typ == "" {
		typ = api.InstanceTypeContainer
	}

	if inst.Ephemeral {
		typ += " (ephemeral)"
	}

	fmt.Fprintf(&b, "Name: %s\n", inst.Name)
	fmt.Fprintf(&b, "Status: %s\n", strings.ToUpper(inst.Status))
	fmt.Fprintf(&b, "Type: %s\n", typ)
	fmt.Fprintf(&b, "Architecture: %s\n", inst.Architecture)

	st := inst.State
	if st != nil && st.Pid != 0 {
		fmt.Fprintf(&b, "PID: %d\n", st.Pid)
	}

	if inst.CreatedAt.Unix() > 0 {
		fmt.Fprintf(&b, "Created: %s\n", infoTime(inst.CreatedAt))
	}

	if inst.LastUsedAt.Unix() > 0 {
		fmt.Fprintf(&b, "Last Used: %s\n", infoTime(inst.LastUsedAt))
	}

	if st != nil && st.Pid != 0 {
		renderResources(&b, st)
	}

	if len(inst.Snapshots) > 0 {
		b.WriteString("\nSnapshots:\n")

		_, err := io.WriteString(w, b.String())
		if err != nil {
			return err
		}

		b.Reset()

		rows := [][]string{}
		for _, s := range inst.Snapshots {
			taken, expires := "", ""
			if s.CreatedAt.Unix() > 0 {
				taken = infoTime(s.CreatedAt)
			}

			if s.ExpiresAt.Unix() > 0 {
				expires = infoTime(s.ExpiresAt)
			}

			stateful := "NO"
			if s.Stateful {
				stateful = "YES"
			}

			_, name, found := strings.Cut(s.Name, "/")
			if !found {
				name = s.Name
			}

			rows = append(rows, []string{name, taken, expires, stateful})
		}

		return renderTable(w, []string{"NAME", "TAKEN AT", "EXPIRES AT", "STATEFUL"}, rows)
	}

	_, err := io.WriteString(w, b.String())

	return err
}

func renderResources(b *strings.Builder, st *api.InstanceState) {
	b.WriteString("\nResources:\n")
	fmt.Fprintf(b, "  Processes: %d\n", st.Processes)

	disks := []string{}
	for name, d := range st.Disk {
		if d.Usage > 0 {
			disks = append(disks, fmt.Sprintf("    %s: %s\n", name, units.BytesIEC(d.Usage)))
		}
	}

	if len(disks) > 0 {
		sort.Strings(disks)
		b.WriteString("  Disk usage:\n" + strings.Join(disks, ""))
	}

	if st.CPU.Usage > 0 {
		b.WriteString("  CPU usage:\n")
		fmt.Fprintf(b, "    CPU usage (in seconds): %d\n", st.CPU.Usage/1e9)
	}

	mem := [][2]string{}
	for _, m := range []struct {
		label string
		v     int64
	}{
		{"Memory (current)", st.Memory.Usage},
		{"Memory (peak)", st.Memory.UsagePeak},
		{"Swap (current)", st.Memory.SwapUsage},
		{"Swap (peak)", st.Memory.SwapUsagePeak},
	} {
		if m.v > 0 {
			mem = append(mem, [2]string{m.label, units.BytesIEC(m.v)})
		}
	}

	if len(mem) > 0 {
		b.WriteString("  Memory usage:\n")
		for _, m := range mem {
			fmt.Fprintf(b, "    %s: %s\n", m[0], m[1])
		}
	}

	if len(st.Network) == 0 {
		return
	}

	names := make([]string, 0, len(st.Network))
	for n := range st.Network {
		names = append(names, n)
	}

	sort.Strings(names)
	b.WriteString("  Network usage:\n")
	for _, n := range names {
		nic := st.Network[n]
		fmt.Fprintf(b, "    %s:\n", n)
		fmt.Fprintf(b, "      Type: %s\n", nic.Type)
		fmt.Fprintf(b, "      State: %s\n", strings.ToUpper(nic.State))
		if nic.HostName != "" {
			fmt.Fprintf(b, "      Host interface: %s\n", nic.HostName)
		}

		if nic.Hwaddr != "" {
			fmt.Fprintf(b, "      MAC address: %s\n", nic.Hwaddr)
		}

		if nic.Mtu != 0 {
			fmt.Fprintf(b, "      MTU: %d\n", nic.Mtu)
		}

		fmt.Fprintf(b, "      Bytes received: %s\n", units.Bytes(nic.Counters.BytesReceived))
		fmt.Fprintf(b, "      Bytes sent: %s\n", units.Bytes(nic.Counters.BytesSent))
		fmt.Fprintf(b, "      Packets received: %d\n", nic.Counters.PacketsReceived)
		fmt.Fprintf(b, "      Packets sent: %d\n", nic.Counters.PacketsSent)

		if len(nic.Addresses) > 0 {
			b.WriteString("      IP addresses:\n")
			for _, ad := range nic.Addresses {
				fmt.Fprintf(b, "        %s:%s%s/%s (%s)\n", ad.Family, strings.Repeat(" ", max(1, 6-len(ad.Family))), ad.Address, ad.Netmask, ad.Scope)
			}
		}
	}
}
