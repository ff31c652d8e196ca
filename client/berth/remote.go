package main

import (
	"fmt"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/client/config"
)

// newRemoteCmd is lxc 5.0's `remote`: the servers this client knows, kept
// in config.yml (client/config).
func newRemoteCmd(a *app) *cobra.Command {
	return newGroup("remote", "Manage the list of remote servers",
		newRemoteAddCmd(a),
		newRemoteListCmd(a),
		newRemoteRemoveCmd(a),
		newRemoteRenameCmd(a),
		newRemoteSwitchCmd(a),
		newRemoteGetDefaultCmd(a),
		newRemoteSetURLCmd(a),
	)
}

// remoteFor loads the configuration and the named remote, refusing the
// built-in local remote when it may not change.
func (a *app) remoteFor(name string, modify bool) (*config.Config, config.Remote, error) {
	conf, err := a.config()
	if err != nil {
		return nil, config.Remote{}, err
	}

	r, ok := conf.Remotes[name]
	if !ok {
		return nil, config.Remote{}, fmt.Errorf("remote %s doesn't exist", name)
	}

	if modify && name == config.Local {
		return nil, config.Remote{}, fmt.Errorf("remote %s is static and cannot be modified", name)
	}

	return conf, r, nil
}

func newRemoteListCmd(a *app) *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:     "list",
		Aliases: []string{"ls"},
		Short:   "List the available remotes",
		Args:    rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			err := checkFormat(format)
			if err != nil {
				return err
			}

			conf, err := a.config()
			if err != nil {
				return err
			}

			rows := [][]string{}
			for name, r := range conf.Remotes {
				protocol := r.Protocol
				if protocol == "" {
					protocol = config.ProtocolLXD
				}

				auth := "tls"
				if strings.HasPrefix(r.Addr, "unix:") {
					auth = "file access"
				}

				shown := name
				if name == conf.DefaultRemote {
					shown += " (current)"
				}

				rows = append(rows, []string{shown, r.Addr, protocol, auth, yesNo(r.Public), yesNo(name == config.Local), "NO"})
			}

			sort.Slice(rows, func(i, j int) bool { return rows[i][0] < rows[j][0] })

			return renderList(a.out, format, []string{"NAME", "URL", "PROTOCOL", "AUTH TYPE", "PUBLIC", "STATIC", "GLOBAL"}, rows, conf.Remotes)
		},
	}

	cmd.Flags().StringVarP(&format, "format", "f", formatTable, formatHelp)

	return cmd
}

func newRemoteRemoveCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "remove REMOTE",
		Aliases: []string{"rm"},
		Short:   "Remove remotes",
		Args:    rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			conf, _, err := a.remoteFor(args[0], true)
			if err != nil {
				return err
			}

			if conf.DefaultRemote == args[0] {
				return fmt.Errorf("can't remove the default remote")
			}

			delete(conf.Remotes, args[0])

			err = a.saveConfig()
			if err != nil {
				return err
			}

			return removeIfExists(conf.ServerCertPath(args[0]))
		},
	}
}

func newRemoteRenameCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "rename REMOTE NEW-NAME",
		Aliases: []string{"mv"},
		Short:   "Rename remotes",
		Args:    rangeArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			from, to := args[0], args[1]
			conf, r, err := a.remoteFor(from, true)
			if err != nil {
				return err
			}

			err = config.ValidateName(to)
			if err != nil {
				return err
			}

			if _, ok := conf.Remotes[to]; ok {
				return fmt.Errorf("remote %s already exists", to)
			}

			// A pin left under the new name by an older remote must not stay: the
			// renamed remote has its own pin, or none.
			err = removeIfExists(conf.ServerCertPath(to))
			if err == nil {
				err = renameIfExists(conf.ServerCertPath(from), conf.ServerCertPath(to))
			}

			if err != nil {
				return err
			}

			conf.Remotes[to] = r
			delete(conf.Remotes, from)
			if conf.DefaultRemote == from {
				conf.DefaultRemote = to
			}

			return a.saveConfig()
		},
	}
}

func newRemoteSwitchCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:     "switch REMOTE",
		Aliases: []string{"set-default"},
		Short:   "Switch the default remote",
		Args:    rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			conf, _, err := a.remoteFor(args[0], false)
			if err != nil {
				return err
			}

			conf.DefaultRemote = args[0]

			return a.saveConfig()
		},
	}
}

func newRemoteGetDefaultCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "get-default",
		Short: "Show the default remote",
		Args:  rangeArgs(0, 0),
		RunE: func(cmd *cobra.Command, _ []string) error {
			conf, err := a.config()
			if err != nil {
				return err
			}

			a.printf("%s\n", conf.DefaultRemote)

			return nil
		},
	}
}

// newRemoteSetURLCmd changes a remote's address and keeps its pinned
// certificate: the server moved, it did not change.
func newRemoteSetURLCmd(a *app) *cobra.Command {
	return &cobra.Command{
		Use:   "set-url REMOTE URL",
		Short: "Set the URL of a remote",
		Args:  rangeArgs(2, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			conf, r, err := a.remoteFor(args[0], true)
			if err != nil {
				return err
			}

			r.Addr, err = remoteAddr(args[1])
			if err != nil {
				return err
			}

			conf.Remotes[args[0]] = r

			return a.saveConfig()
		},
	}
}
