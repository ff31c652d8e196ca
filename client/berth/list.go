package main

import (
	"context"
	"regexp"
	"runtime/debug"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/shared/api"
)

func newListCmd(a *app) *cobra.Command {
	var format, columns string
	cmd := &cobra.Command{
		Use:     "list [REMOTE:][FILTER...]",
		Aliases: []string{"ls"},
		Short:   "List instances",
		Long: `List instances.

A filter is either part of an instance name (a prefix, or a regular expression
matching the whole name) or KEY=VALUE, where KEY is name, status, type,
architecture, description or a config key (e.g. user.role), and VALUE a
regular expression matched case-insensitively against the whole value.

Columns (-c) use lxc's shorthand letters (default "ns46tS", and L on a cluster):
  n name, s state, 4 IPv4, 6 IPv6, t type, S snapshots, a architecture,
  c created at, l last used at, d description, f/F base image, p PID,
  N processes, P profiles, m memory, u CPU, D disk, b storage pool,
  e project, L location
or config key columns: [config:]KEY[:NAME[:MAXWIDTH]], comma separated.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.list(cmd.Context(), args, format, columns)
		},
	}

	cmd.Flags().StringVarP(&format, "format", "f", formatTable, formatHelp)
	cmd.Flags().StringVarP(&columns, "columns", "c", defaultColumns, "Columns")

	return cmd
}

func (a *app) list(ctx context.Context, filters []string, format, columns string) error {
	// The command lives for one answer, all of it garbage once rendered: collecting
	// less often while a 1.6 MB list of 500 instances is decoded saved ~8 % of the
	// process's CPU (BenchmarkListProcess500, GOGC=400 against 100) for a few MB more.
	defer debug.SetGCPercent(debug.SetGCPercent(400))

	err := checkFormat(format)
	if err != nil {
		return err
	}

	cols, err := parseColumns(columns)
	if err != nil {
		return err
	}

	// Like lxc: a first argument with a colon names the remote, and what
	// follows the colon is a filter.
	remoteArg := ""
	if len(filters) > 0 && strings.Contains(filters[0], ":") {
		remoteArg = filters[0]
		filters = filters[1:]
	}

	c, first, err := a.target(remoteArg)
	if err != nil {
		return err
	}

	if first != "" {
		filters = append([]string{first}, filters...)
	}

	var insts []api.InstanceFull
	if format == formatJSON || format == formatYAML {
		insts, err = c.GetInstancesFull(ctx) // printed whole
	} else {
		insts, err = getListInstances(ctx, c, listNeeds(columns, filters))
	}

	if err != nil {
		return err
	}

	// Like lxc: the default columns take L (LOCATION) when the server is clustered.
	if columns == defaultColumns && clustered(ctx, c, insts) {
		cols, err = parseColumns(defaultColumns + "L")
		if err != nil {
			return err
		}
	}

	shown := []api.InstanceFull{}
	for _, inst := range insts {
		if matchFilters(inst, filters) {
			shown = append(shown, inst)
		}
	}

	sort.Slice(shown, func(i, j int) bool { return shown[i].Name < shown[j].Name })

	header, rows := instanceRows(shown, cols)

	return renderList(a.out, format, header, rows, shown)
}

// clustered tells whether the server is a cluster member, which lxc asks the server. The
// instances already say it: berthd, like LXD, gives every instance of a server that is
// not clustered the location "none", and a member's name on a cluster. Only an empty list
// asks, so a table of instances costs one round trip (a second one cost ~0.6 ms and its
// decoding more, of a ~20 ms command here).
func clustered(ctx context.Context, c *client.Client, insts []api.InstanceFull) bool {
	for _, inst := range insts {
		if inst.Location != "" && inst.Location != "none" {
			return true
		}
	}

	if len(insts) > 0 {
		return false
	}

	srv, _, err := c.GetServer(ctx)

	return err == nil && srv.Environment.ServerClustered
}

func instanceRows(insts []api.InstanceFull, cols []column) ([]string, [][]string) {
	header := make([]string, len(cols))
	for i, c := range cols {
		header[i] = c.Name
	}

	rows := make([][]string, 0, len(insts))
	for _, inst := range insts {
		row := make([]string, len(cols))
		for i, c := range cols {
			row[i] = c.Data(inst)
		}

		rows = append(rows, row)
	}

	return header, rows
}

// matchFilters reports whether inst passes every filter (client side; the
// server gets an empty filter).
func matchFilters(inst api.InstanceFull, filters []string) bool {
	for _, f := range filters {
		key, value, isKV := strings.Cut(f, "=")
		if !isKV {
			if !matchName(inst.Name, f) {
				return false
			}

			continue
		}

		if !matchValue(fieldValue(inst, key), value) {
			return false
		}
	}

	return true
}

// matchName: a name prefix, or a regular expression matching the whole name.
func matchName(name, filter string) bool {
	if strings.HasPrefix(name, filter) {
		return true
	}

	re, err := regexp.Compile("^(?:" + filter + ")$")

	return err == nil && re.MatchString(name)
}

func matchValue(have, want string) bool {
	re, err := regexp.Compile("(?i)^(?:" + want + ")$")
	if err != nil {
		return strings.EqualFold(have, want)
	}

	return re.MatchString(have)
}

func fieldValue(inst api.InstanceFull, key string) string {
	switch strings.ToLower(key) {
	case "name":
		return inst.Name
	case "status", "state":
		return inst.Status
	case "type":
		if inst.Type == "" {
			return api.InstanceTypeContainer
		}

		return inst.Type
	case "architecture":
		return inst.Architecture
	case "description":
		return inst.Description
	case "location":
		return inst.Location
	}

	return inst.ExpandedConfig[strings.TrimPrefix(key, "config.")]
}
