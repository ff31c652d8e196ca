package main

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/client"
)

// listFetch gets the objects of a `list` subcommand (printed as they are for json/yaml)
// and their table rows, in display order.
type listFetch func(ctx context.Context, c *client.Client) (objects any, rows [][]string, err error)

// newListSubcmd builds the `list` subcommand shared by image alias, network, profile and
// storage: format flag, client, fetch, render.
func newListSubcmd(a *app, short string, header []string, fetch listFetch) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:     "list [REMOTE:]",
		Aliases: []string{"ls"},
		Short:   short,
		Args:    rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			err := checkFormat(format)
			if err != nil {
				return err
			}

			c, err := a.remoteOnly(cmd, args)
			if err != nil {
				return err
			}

			objects, rows, err := fetch(cmd.Context(), c)
			if err != nil {
				return err
			}

			return renderList(a.out, format, header, rows, objects)
		},
	}

	cmd.Flags().StringVarP(&format, "format", "f", formatTable, formatHelp)
	return cmd
}
