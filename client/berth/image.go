package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/shared/api"
)

func newImageCmd(a *app) *cobra.Command {
	return newGroup("image", "Manage images",
		newImageListCmd(a),
		newImageImportCmd(a),
		newImageDeleteCmd(a),
		newImageAliasCmd(a),
		newImageBuildCmd(a),
		newImagePublishStreamsCmd(a),
	)
}

func newImageListCmd(a *app) *cobra.Command {
	return newListSubcmd(a, "List images", imageHeader, func(ctx context.Context, c *client.Client) (any, [][]string, error) {
		images, err := c.GetImages(ctx)
		if err != nil {
			return nil, nil, err
		}

		return images, imageRows(images), nil
	})
}

// imageHeader is lxc's default image columns (lfpdatsu).
var imageHeader = []string{"ALIAS", "FINGERPRINT", "PUBLIC", "DESCRIPTION", "ARCHITECTURE", "TYPE", "SIZE", "UPLOAD DATE"}

// imageRows renders the rows of imageHeader.
func imageRows(images []api.Image) [][]string {
	rows := [][]string{}
	for _, img := range images {
		public := "no"
		if img.Public {
			public = "yes"
		}

		typ := img.Type
		if typ == "" {
			typ = api.InstanceTypeContainer
		}

		rows = append(rows, []string{
			shortestAlias(img.Aliases),
			shortFingerprint(img.Fingerprint),
			public,
			img.Properties["description"],
			img.Architecture,
			strings.ToUpper(typ),
			fmt.Sprintf("%.2fMB", float64(img.Size)/1024/1024),
			img.UploadedAt.UTC().Format("Jan 2, 2006 at 3:04pm (MST)"),
		})
	}

	sort.SliceStable(rows, func(i, j int) bool {
		if rows[i][0] != rows[j][0] {
			return rows[i][0] < rows[j][0]
		}

		return rows[i][1] < rows[j][1]
	})

	return rows
}

// shortestAlias is lxc's ALIAS column: the shortest alias, plus a count.
func shortestAlias(aliases []api.ImageAlias) string {
	if len(aliases) == 0 {
		return ""
	}

	best := aliases[0].Name
	for _, al := range aliases[1:] {
		if len(al.Name) < len(best) || (len(al.Name) == len(best) && al.Name < best) {
			best = al.Name
		}
	}

	if len(aliases) > 1 {
		return fmt.Sprintf("%s (%d more)", best, len(aliases)-1)
	}

	return best
}

func newImageImportCmd(a *app) *cobra.Command {
	var aliases []string
	cmd := &cobra.Command{
		Use:   "import FILE [REMOTE:]",
		Short: "Import a unified image tarball",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := a.remoteOnly(cmd, args[1:])
			if err != nil {
				return err
			}

			fp, err := a.uploadImage(cmd.Context(), c, args[0])
			if err != nil {
				return err
			}

			err = setAliases(cmd.Context(), c, fp, aliases)
			if err != nil {
				return err
			}

			a.printf("Image imported with fingerprint: %s\n", fp)

			return nil
		},
	}

	cmd.Flags().StringArrayVar(&aliases, "alias", nil, "New alias for the image (repeatable)")

	return cmd
}

// uploadImage sends a unified tarball and returns its fingerprint.
func (a *app) uploadImage(ctx context.Context, c *client.Client, path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}

	defer func() { _ = f.Close() }()

	p := newProgressLine(a.out)

	op, err := c.CreateImage(ctx, f, path, transferProgress(p, "Transferring image"))
	if err != nil {
		p.Done("")
		return "", err
	}

	err = op.Wait(ctx)
	p.Done("")
	if err != nil {
		return "", err
	}

	fp, ok := op.Metadata["fingerprint"].(string)
	if !ok || fp == "" {
		return "", fmt.Errorf("the server did not report the image fingerprint")
	}

	return fp, nil
}

// setAliases points every alias at fp, replacing aliases that point elsewhere
// (as `lxc image import --alias` does).
func setAliases(ctx context.Context, c *client.Client, fp string, aliases []string) error {
	for _, name := range aliases {
		cur, _, err := c.GetImageAlias(ctx, name)
		if err == nil {
			if cur.Target == fp {
				continue
			}

			err = c.DeleteImageAlias(ctx, name)
			if err != nil {
				return fmt.Errorf("replacing alias %q: %w", name, err)
			}
		} else if !api.StatusErrorCheck(err, 404) {
			return err
		}

		err = c.CreateImageAlias(ctx, api.ImageAliasesPost{Name: name, ImageAliasesEntryPut: api.ImageAliasesEntryPut{Target: fp}})
		if err != nil {
			return fmt.Errorf("creating alias %q: %w", name, err)
		}
	}

	return nil
}

func newImageDeleteCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "delete [REMOTE:]IMAGE...",
		Aliases: []string{"rm"},
		Short:   "Delete images (by alias or fingerprint prefix)",
		Args:    rangeArgs(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.forEach(args, func(arg string) error {
				c, name, err := a.target(arg)
				if err != nil {
					return err
				}

				img, err := resolveImage(cmd.Context(), c, name)
				if err != nil {
					return err
				}

				op, err := c.DeleteImage(cmd.Context(), img.Fingerprint)
				if err != nil {
					return err
				}

				return op.Wait(cmd.Context())
			})
		},
	}
}

func newImageAliasCmd(a *app) *cobra.Command {
	create := &cobra.Command{
		Use:   "create [REMOTE:]ALIAS FINGERPRINT",
		Short: "Create an alias for an image",
		Args:  rangeArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, name, err := a.instanceTarget(args[0])
			if err != nil {
				return err
			}

			return c.CreateImageAlias(cmd.Context(), api.ImageAliasesPost{Name: name, ImageAliasesEntryPut: api.ImageAliasesEntryPut{Target: args[1]}})
		},
	}

	del := &cobra.Command{
		Use:     "delete [REMOTE:]ALIAS",
		Aliases: []string{"rm"},
		Short:   "Delete an alias (not the image)",
		Args:    rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, name, err := a.instanceTarget(args[0])
			if err != nil {
				return err
			}

			return c.DeleteImageAlias(cmd.Context(), name)
		},
	}

	list := newListSubcmd(a, "List aliases", []string{"ALIAS", "FINGERPRINT", "TYPE", "DESCRIPTION"},
		func(ctx context.Context, c *client.Client) (any, [][]string, error) {
			aliases, err := c.GetImageAliases(ctx)
			if err != nil {
				return nil, nil, err
			}

			sort.Slice(aliases, func(i, j int) bool { return aliases[i].Name < aliases[j].Name })
			rows := [][]string{}
			for _, al := range aliases {
				typ := al.Type
				if typ == "" {
					typ = api.InstanceTypeContainer
				}

				rows = append(rows, []string{al.Name, shortFingerprint(al.Target), strings.ToUpper(typ), al.Description})
			}

			return aliases, rows, nil
		})

	return newGroup("alias", "Manage image aliases", create, del, list)
}
