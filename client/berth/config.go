package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"sort"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"
	"gopkg.in/yaml.v3"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/shared/api"
)

// newConfigCmd is `berth config`, as lxc 5.0 spells it: without an instance name,
// get/set/unset/show act on the server's configuration.
func newConfigCmd(a *app) *cobra.Command {
	var expanded bool
	show := &cobra.Command{
		Use:   "show [REMOTE:][NAME]",
		Short: "Show the configuration of an instance (or of the server)",
		Args:  rangeArgs(0, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, name, err := a.target(strings.Join(args, ""))
			if err != nil {
				return err
			}

			if name == "" {
				srv, _, err := c.GetServer(cmd.Context())
				if err != nil {
					return err
				}

				return writeYAML(a.out, map[string]any{"config": nonNil(srv.Config)})
			}

			inst, _, err := c.GetInstance(cmd.Context(), name)
			if err != nil {
				return err
			}

			put := inst.InstancePut
			if expanded {
				put.Config, put.Devices = inst.ExpandedConfig, inst.ExpandedDevices
			}

			return writeYAML(a.out, put)
		},
	}

	show.Flags().BoolVarP(&expanded, "expanded", "e", false, "Show the configuration with profiles applied")

	var getExpanded bool
	get := &cobra.Command{
		Use:   "get [REMOTE:][NAME] KEY",
		Short: "Get a configuration key of an instance (or of the server)",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, name, err := a.target(strings.Join(args[:len(args)-1], ""))
			if err != nil {
				return err
			}

			key := args[len(args)-1]
			if name == "" {
				srv, _, err := c.GetServer(cmd.Context())
				if err != nil {
					return err
				}

				a.printf("%s\n", srv.Config[key])
				return nil
			}

			inst, _, err := c.GetInstance(cmd.Context(), name)
			if err != nil {
				return err
			}

			config := inst.Config
			if getExpanded {
				config = inst.ExpandedConfig
			}

			a.printf("%s\n", config[key])
			return nil
		},
	}

	get.Flags().BoolVarP(&getExpanded, "expanded", "e", false, "Read the key with profiles applied")

	set := &cobra.Command{
		Use:   "set [REMOTE:][NAME] KEY=VALUE... | set [REMOTE:][NAME] KEY VALUE",
		Short: "Set configuration keys of an instance (or of the server)",
		Args:  rangeArgs(1, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, kv, err := splitSetArgs(args)
			if err != nil {
				return &usageError{cmd: cmd, err: err}
			}

			return a.setConfig(cmd.Context(), name, kv, nil)
		},
	}

	unset := &cobra.Command{
		Use:   "unset [REMOTE:][NAME] KEY",
		Short: "Unset a configuration key of an instance (or of the server)",
		Args:  rangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, key := "", args[0]
			if len(args) == 2 {
				name, key = args[0], args[1]
			}

			return a.setConfig(cmd.Context(), name, nil, []string{key})
		},
	}

	edit := &cobra.Command{
		Use:   "edit [REMOTE:]NAME",
		Short: "Edit an instance's configuration as YAML (standard input when not a terminal)",
		Args:  rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.editInstance(cmd.Context(), args[0])
		},
	}

	return newGroup("config", "Manage instance and server configuration", show, get, set, unset, edit, newConfigDeviceCmd(a, false), newConfigTrustCmd(a))
}

// splitSetArgs reads lxc's `config set` forms: [NAME] k=v..., [NAME] KEY VALUE. A first
// argument with "=" means the server; so do exactly two arguments without one.
func splitSetArgs(args []string) (string, map[string]string, error) {
	name := ""
	rest := args
	switch {
	case strings.Contains(args[0], "="):
	case len(args) == 2 && !strings.Contains(args[1], "="):
	default:
		name, rest = args[0], args[1:]
	}

	kv, err := parseKV(rest)
	return name, kv, err
}

// parseKV reads KEY VALUE or KEY=VALUE... arguments.
func parseKV(rest []string) (map[string]string, error) {
	kv := map[string]string{}
	if len(rest) == 2 && !strings.Contains(rest[0], "=") {
		kv[rest[0]] = rest[1]
		return kv, nil
	}

	if len(rest) == 0 {
		return nil, fmt.Errorf("no key to set")
	}

	for _, arg := range rest {
		k, v, ok := strings.Cut(arg, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("%q is not KEY=VALUE", arg)
		}

		kv[k] = v
	}

	return kv, nil
}

// setConfig sets and unsets keys of an instance (name != "") or of the server, with the
// GET's ETag sent back as If-Match so a concurrent change is not overwritten.
func (a *app) setConfig(ctx context.Context, arg string, set map[string]string, unset []string) error {
	c, name, err := a.target(arg)
	if err != nil {
		return err
	}

	apply := func(config map[string]string) error {
		for _, k := range unset {
			_, ok := config[k]
			if !ok {
				return fmt.Errorf("can't unset key '%s', it's not currently set", k)
			}

			delete(config, k)
		}

		for k, v := range set {
			config[k] = v
		}

		return nil
	}

	if name == "" {
		srv, etag, err := c.GetServer(ctx)
		if err != nil {
			return err
		}

		config := nonNil(srv.Config)
		err = apply(config)
		if err != nil {
			return err
		}

		return c.UpdateServerConfig(ctx, config, etag)
	}

	return a.updateInstance(ctx, c, name, func(put *api.InstancePut) error {
		put.Config = nonNil(put.Config)
		return apply(put.Config)
	})
}

// updateInstance reads an instance, lets change edit its writable part, and writes it
// back with If-Match, waiting for the operation.
func (a *app) updateInstance(ctx context.Context, c *client.Client, name string, change func(*api.InstancePut) error) error {
	inst, etag, err := c.GetInstance(ctx, name)
	if err != nil {
		return err
	}

	put := inst.InstancePut
	err = change(&put)
	if err != nil {
		return err
	}

	op, err := c.UpdateInstance(ctx, name, put, etag)
	if err != nil {
		return err
	}

	return op.Wait(ctx)
}

func (a *app) editInstance(ctx context.Context, name string) error {
	c, name, err := a.instanceTarget(name)
	if err != nil {
		return err
	}

	if !term.IsTerminal(int(os.Stdin.Fd())) {
		data, err := io.ReadAll(os.Stdin)
		if err != nil {
			return err
		}

		put := api.InstancePut{}
		err = yaml.Unmarshal(data, &put)
		if err != nil {
			return fmt.Errorf("parsing YAML: %w", err)
		}

		op, err := c.UpdateInstance(ctx, name, put, "")
		if err != nil {
			return err
		}

		return op.Wait(ctx)
	}

	inst, etag, err := c.GetInstance(ctx, name)
	if err != nil {
		return err
	}

	return editYAML(ctx, inst.InstancePut, func(data []byte) error {
		put := api.InstancePut{}
		err := yaml.Unmarshal(data, &put)
		if err != nil {
			return fmt.Errorf("parsing YAML: %w", err)
		}

		op, err := c.UpdateInstance(ctx, name, put, etag)
		if err != nil {
			return err
		}

		return op.Wait(ctx)
	})
}

// editYAML opens v as YAML in $VISUAL/$EDITOR (vi) and passes the result to save; on an
// error it offers the text again, as lxc does, until saved or left unchanged.
func editYAML(ctx context.Context, v any, save func([]byte) error) error {
	data, err := yaml.Marshal(v)
	if err != nil {
		return err
	}

	tmp, err := os.CreateTemp("", "berth-edit-*.yaml")
	if err != nil {
		return err
	}

	defer func() { _ = os.Remove(tmp.Name()) }()

	_, err = tmp.Write(data)
	_ = tmp.Close()
	if err != nil {
		return err
	}

	for {
		err = runEditor(ctx, tmp.Name())
		if err != nil {
			return err
		}

		edited, err := os.ReadFile(tmp.Name())
		if err != nil {
			return err
		}

		if string(edited) == string(data) {
			return nil
		}

		err = save(edited)
		if err == nil {
			return nil
		}

		fmt.Fprintf(os.Stderr, "Error: %v\nPress enter to open the editor again or ctrl+c to abort change\n", err)
		_, _ = fmt.Fscanln(os.Stdin)
	}
}

// newConfigDeviceCmd is `berth config device` (profile: `berth profile device`).
func newConfigDeviceCmd(a *app, profile bool) *cobra.Command {
	what := "instance"
	if profile {
		what = "profile"
	}

	// devices runs change on the devices of the named instance or profile and saves.
	devices := func(ctx context.Context, name string, change func(map[string]map[string]string) error) error {
		c, name, err := a.instanceTarget(name)
		if err != nil {
			return err
		}

		if profile {
			p, etag, err := c.GetProfile(ctx, name)
			if err != nil {
				return err
			}

			p.Devices = nonNilDevices(p.Devices)
			err = change(p.Devices)
			if err != nil {
				return err
			}

			return c.UpdateProfile(ctx, name, p.ProfilePut, etag)
		}

		return a.updateInstance(ctx, c, name, func(put *api.InstancePut) error {
			put.Devices = nonNilDevices(put.Devices)
			return change(put.Devices)
		})
	}

	read := func(ctx context.Context, name string) (map[string]map[string]string, error) {
		c, name, err := a.instanceTarget(name)
		if err != nil {
			return nil, err
		}

		if profile {
			p, _, err := c.GetProfile(ctx, name)
			if err != nil {
				return nil, err
			}

			return nonNilDevices(p.Devices), nil
		}

		inst, _, err := c.GetInstance(ctx, name)
		if err != nil {
			return nil, err
		}

		return nonNilDevices(inst.Devices), nil
	}

	add := &cobra.Command{
		Use:   "add [REMOTE:]NAME DEVICE TYPE [KEY=VALUE...]",
		Short: "Add a device to an " + what,
		Args:  rangeArgs(3, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dev := map[string]string{"type": args[2]}
			for _, kv := range args[3:] {
				k, v, ok := strings.Cut(kv, "=")
				if !ok || k == "" {
					return &usageError{cmd: cmd, err: fmt.Errorf("%q is not KEY=VALUE", kv)}
				}

				dev[k] = v
			}

			err := devices(cmd.Context(), args[0], func(d map[string]map[string]string) error {
				_, ok := d[args[1]]
				if ok {
					return fmt.Errorf("The device already exists")
				}

				d[args[1]] = dev
				return nil
			})
			if err != nil {
				return err
			}

			a.printf("Device %s added to %s\n", args[1], args[0])
			return nil
		},
	}

	remove := &cobra.Command{
		Use:     "remove [REMOTE:]NAME DEVICE...",
		Aliases: []string{"rm"},
		Short:   "Remove devices from an " + what,
		Args:    rangeArgs(2, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			err := devices(cmd.Context(), args[0], func(d map[string]map[string]string) error {
				for _, dev := range args[1:] {
					_, ok := d[dev]
					if !ok {
						return fmt.Errorf("The device doesn't exist")
					}

					delete(d, dev)
				}

				return nil
			})
			if err != nil {
				return err
			}

			a.printf("Device %s removed from %s\n", strings.Join(args[1:], ", "), args[0])
			return nil
		},
	}

	list := &cobra.Command{
		Use:   "list [REMOTE:]NAME",
		Short: "List the devices of an " + what,
		Args:  rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := read(cmd.Context(), args[0])
			if err != nil {
				return err
			}

			names := make([]string, 0, len(d))
			for n := range d {
				names = append(names, n)
			}

			sort.Strings(names)
			for _, n := range names {
				a.printf("%s\n", n)
			}

			return nil
		},
	}

	show := &cobra.Command{
		Use:   "show [REMOTE:]NAME",
		Short: "Show the devices of an " + what + " as YAML",
		Args:  rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			d, err := read(cmd.Context(), args[0])
			if err != nil {
				return err
			}

			return writeYAML(a.out, d)
		},
	}

	return newGroup("device", "Manage devices", add, remove, list, show)
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}

	return m
}

func nonNilDevices(m map[string]map[string]string) map[string]map[string]string {
	if m == nil {
		return map[string]map[string]string{}
	}

	return m
}

// runEditor opens path in $VISUAL, else $EDITOR, else vi (a command line, as lxc
// takes it) on the terminal, and waits for it.
func runEditor(ctx context.Context, path string) error {
	editor := os.Getenv("VISUAL")
	if editor == "" {
		editor = os.Getenv("EDITOR")
	}

	if editor == "" {
		editor = "vi"
	}

	ed := exec.CommandContext(ctx, "sh", "-c", editor+` "$1"`, "editor", path)
	ed.Stdin, ed.Stdout, ed.Stderr = os.Stdin, os.Stdout, os.Stderr

	err := ed.Run()
	if err != nil {
		return fmt.Errorf("running editor: %w", err)
	}

	return nil
}
