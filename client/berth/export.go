package main

import (
	"fmt"
	"os"
	"path"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/shared/api"
)

func newExportCmd(a *app) *cobra.Command {
	var instanceOnly bool
	cmd := &cobra.Command{
		Use:   "export [REMOTE:]NAME [FILE]",
		Short: "Export an instance (and its snapshots) as a backup tarball",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, name, err := a.instanceTarget(args[0])
			if err != nil {
				return err
			}

			ctx := cmd.Context()
			file := name + ".tar.gz"
			if len(args) == 2 {
				file = args[1]
			}

			op, err := c.CreateInstanceBackup(ctx, name, api.InstanceBackupsPost{InstanceOnly: instanceOnly, ContainerOnly: instanceOnly})
			if err != nil {
				return err
			}

			err = op.WaitOrCancel(ctx)
			if err != nil {
				return err
			}

			urls := op.Resources["backups"]
			if len(urls) == 0 {
				return fmt.Errorf("the server did not name the backup")
			}

			backup := path.Base(urls[0])
			defer func() {
				if op, err := c.DeleteInstanceBackup(ctx, name, backup); err == nil {
					_ = op.Wait(ctx)
				}
			}()

			out, err := os.Create(file)
			if err != nil {
				return err
			}

			err = c.GetInstanceBackupFile(ctx, name, backup, out)
			closeErr := out.Close()
			if err == nil {
				err = closeErr
			}

			if err != nil {
				_ = os.Remove(file)
				return err
			}

			a.printf("Backup exported successfully!\n")
			return nil
		},
	}

	cmd.Flags().BoolVar(&instanceOnly, "instance-only", false, "Whether or not to only backup the instance (without snapshots)")
	return cmd
}

func newImportCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "import FILE [[REMOTE:]NAME]",
		Short: "Import an instance from a backup tarball",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			target := ""
			if len(args) == 2 {
				target = args[1]
			}

			c, name, err := a.target(target)
			if err != nil {
				return err
			}

			f, err := os.Open(args[0])
			if err != nil {
				return err
			}

			defer f.Close()

			op, err := c.CreateInstanceFromBackup(cmd.Context(), f, name)
			if err != nil {
				return err
			}

			return op.Wait(cmd.Context())
		},
	}
}
