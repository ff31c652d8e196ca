package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"gopkg.in/yaml.v3"

	"github.com/berth-dev/berth/shared/api"
)

func newProfileCreateCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "create [REMOTE:]NAME",
		Short: "Create an empty profile",
		Args:  rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, name, err := a.instanceTarget(args[0])
			if err != nil {
				return err
			}

			err = c.CreateProfile(cmd.Context(), api.ProfilesPost{Name: name})
			if err != nil {
				return err
			}

			a.printf("Profile %s created\n", args[0])
			return nil
		},
	}
}

func newProfileEditCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "edit [REMOTE:]NAME",
		Short: "Edit a profile as YAML (standard input when not a terminal)",
		Args:  rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, name, err := a.instanceTarget(args[0])
			if err != nil {
				return err
			}

			parse := func(data []byte) (api.ProfilePut, error) {
				put := api.ProfilePut{}
				err := yaml.Unmarshal(data, &put)
				if err != nil {
					return put, fmt.Errorf("parsing YAML: %w", err)
				}

				return put, nil
			}

			// Like lxc: standard input is sent without If-Match.
			if !term.IsTerminal(int(os.Stdin.Fd())) {
				data, err := io.ReadAll(os.Stdin)
				if err != nil {
					return err
				}

				put, err := parse(data)
				if err != nil {
					return err
				}

				return c.UpdateProfile(cmd.Context(), name, put, "")
			}

			p, etag, err := c.GetProfile(cmd.Context(), name)
			if err != nil {
				return err
			}

			return editYAML(cmd.Context(), p.ProfilePut, func(data []byte) error {
				put, err := parse(data)
				if err != nil {
					return err
				}

				return c.UpdateProfile(cmd.Context(), name, put, etag)
			})
		},
	}
}

// newProfileSetCmd is `profile set NAME KEY=VALUE...|KEY VALUE` or `profile unset NAME KEY`.
func newProfileSetCmd(a *app, unset bool) *cobra.Command {
	use, short, args := "set NAME KEY=VALUE... | set NAME KEY VALUE", "Set configuration keys of a profile", rangeArgs(2, -1)
	if unset {
		use, short, args = "unset NAME KEY", "Unset a configuration key of a profile", rangeArgs(2, 2)
	}

	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  args,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, name, err := a.instanceTarget(args[0])
			if err != nil {
				return err
			}

			p, etag, err := c.GetProfile(cmd.Context(), name)
			if err != nil {
				return err
			}

			p.Config = nonNil(p.Config)
			if unset {
				_, ok := p.Config[args[1]]
				if !ok {
					return fmt.Errorf("can't unset key '%s', it's not currently set", args[1])
				}

				delete(p.Config, args[1])
			} else {
				kv, err := parseKV(args[1:])
				if err != nil {
					return &usageError{cmd: cmd, err: err}
				}

				for k, v := range kv {
					p.Config[k] = v
				}
			}

			return c.UpdateProfile(cmd.Context(), name, p.ProfilePut, etag)
		},
	}
}

func newProfileGetCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "get [REMOTE:]NAME KEY",
		Short: "Get a configuration key of a profile",
		Args:  rangeArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, name, err := a.instanceTarget(args[0])
			if err != nil {
				return err
			}

			p, _, err := c.GetProfile(cmd.Context(), name)
			if err != nil {
				return err
			}

			a.printf("%s\n", p.Config[args[1]])
			return nil
		},
	}
}

// newProfileAssignCmd: `assign INSTANCE p1,p2` replaces the list; `add`/`remove INSTANCE
// PROFILE` change one entry.
func newProfileAssignCmd(a *app, verb string) *cobra.Command {
	use, short := verb+" INSTANCE PROFILE", "Add a profile to an instance"
	switch verb {
	case "assign":
		use, short = "assign INSTANCE PROFILES", "Set an instance's profiles (comma separated, in order; empty for none)"
	case "remove":
		short = "Remove a profile from an instance"
	}

	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  rangeArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, name, err := a.instanceTarget(args[0])
			if err != nil {
				return err
			}

			arg := args[1]
			err = a.updateInstance(cmd.Context(), c, name, func(put *api.InstancePut) error {
				switch verb {
				case "assign":
					put.Profiles = []string{}
					if arg != "" {
						put.Profiles = strings.Split(arg, ",")
					}
				case "add":
					if slices.Contains(put.Profiles, arg) {
						return fmt.Errorf("profile %s is already applied to %s", arg, name)
					}

					put.Profiles = append(put.Profiles, arg)
				case "remove":
					i := slices.Index(put.Profiles, arg)
					if i < 0 {
						return fmt.Errorf("profile %s isn't currently applied to %s", arg, name)
					}

					put.Profiles = slices.Delete(put.Profiles, i, i+1)
				}

				return nil
			})
			if err != nil {
				return err
			}

			switch verb {
			case "assign":
				a.printf("Profiles %s applied to %s\n", arg, name)
			case "add":
				a.printf("Profile %s added to %s\n", arg, name)
			case "remove":
				a.printf("Profile %s removed from %s\n", arg, name)
			}

			return nil
		},
	}
}

func newProfileCopyCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "copy [REMOTE:]SOURCE [REMOTE:]TARGET",
		Aliases: []string{"cp"},
		Short:   "Copy a profile",
		Args:    rangeArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.copyProfile(cmd.Context(), args[0], args[1])
		},
	}
}

func (a *app) copyProfile(ctx context.Context, src, dst string) error {
	c, src, dst, err := a.sameRemote(src, dst)
	if err != nil {
		return err
	}

	p, _, err := c.GetProfile(ctx, src)
	if err != nil {
		return err
	}

	return c.CreateProfile(ctx, api.ProfilesPost{ProfilePut: p.ProfilePut, Name: dst})
}

func newProfileRenameCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "rename [REMOTE:]OLD [REMOTE:]NEW",
		Aliases: []string{"mv"},
		Short:   "Rename a profile",
		Args:    rangeArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, from, to, err := a.sameRemote(args[0], args[1])
			if err != nil {
				return err
			}

			err = c.RenameProfile(cmd.Context(), from, to)
			if err != nil {
				return err
			}

			a.printf("Profile %s renamed to %s\n", args[0], args[1])
			return nil
		},
	}
}

func newProfileDeleteCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "delete [REMOTE:]NAME",
		Aliases: []string{"rm"},
		Short:   "Delete a profile (refused while instances use it)",
		Args:    rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, name, err := a.instanceTarget(args[0])
			if err != nil {
				return err
			}

			err = c.DeleteProfile(cmd.Context(), name)
			if err != nil {
				return err
			}

			a.printf("Profile %s deleted\n", args[0])
			return nil
		},
	}
}
