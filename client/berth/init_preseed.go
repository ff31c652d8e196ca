package main

import (
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/berth-dev/berth/client"
)

// withPreseed gives `berth init` the --preseed of `lxd init`: instead of creating an
// instance it applies a preseed YAML (server config, storage pools, networks, projects,
// profiles, a cluster to enable or join) read from standard input, or from FILE with
// `--preseed FILE` or `--preseed=FILE`, to the default remote. A preseed that fails is
// rolled back (client.ApplyPreseed); the command then exits with 1.
func withPreseed(a *app, cmd *cobra.Command) {
	var preseed string
	cmd.Flags().StringVar(&preseed, "preseed", "", "Apply an `lxd init --preseed` YAML from standard input (or FILE) instead of creating an instance")
	cmd.Flags().Lookup("preseed").NoOptDefVal = "-"
	cmd.Example = "  berth init --preseed < preseed.yaml\n  berth init --preseed preseed.yaml"

	args, runE := cmd.Args, cmd.RunE
	cmd.Args = func(cmd *cobra.Command, list []string) error {
		if preseed == "" {
			return args(cmd, list)
		}

		max := 1 // --preseed FILE
		if preseed != "-" {
			max = 0 // --preseed=FILE
		}

		if len(list) > max {
			return &usageError{cmd: cmd, err: fmt.Errorf("invalid number of arguments: init --preseed takes at most one FILE, got %d arguments", len(list))}
		}

		var other string
		cmd.Flags().Visit(func(f *pflag.Flag) {
			if f.Name != "preseed" && f.Name != "socket" {
				other = f.Name
			}
		})

		if other != "" {
			return &usageError{cmd: cmd, err: fmt.Errorf("--preseed cannot be combined with --%s", other)}
		}

		return nil
	}

	cmd.RunE = func(cmd *cobra.Command, list []string) error {
		if preseed == "" {
			return runE(cmd, list)
		}

		path := preseed
		if path == "-" && len(list) == 1 {
			path = list[0]
		}

		p, err := readPreseedFrom(a.in, path)
		if err != nil {
			return err
		}

		c, err := a.client()
		if err != nil {
			return err
		}

		return c.ApplyPreseed(cmd.Context(), p)
	}
}

// readPreseedFrom reads a preseed from path, or from in when path is "-".
func readPreseedFrom(in io.Reader, path string) (*client.Preseed, error) {
	if path == "-" {
		return client.ReadPreseed(in)
	}

	f, err := os.Open(path)
	if err != nil {
		var pe *os.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}

		return nil, fmt.Errorf("reading the preseed %s: %w", path, err)
	}

	defer func() { _ = f.Close() }()
	p, err := client.ReadPreseed(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}

	return p, nil
}
