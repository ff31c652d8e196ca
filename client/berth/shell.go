package main

import (
	"github.com/spf13/cobra"
)

// loginAs starts a login shell as a user given by name or uid. su needs a
// name, so the uid is resolved inside; an unknown user must fail rather than
// fall back to su's default (root).
const loginAs = `n=$(getent passwd "$1" | cut -d: -f1) && [ -n "$n" ] && exec su -l "$n"; echo "berth shell: unknown user $1" >&2; exit 1`

func newShellCmd(a *app) *cobra.Command {
	var user string
	cmd := &cobra.Command{
		Use:   "shell [REMOTE:]NAME",
		Short: "Open a login shell in an instance",
		Long: `Open a login shell in an instance: root's by default (like lxc's "shell"
alias, "exec NAME -- su -l"), or the given user's with --user.`,
		Args: rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.exec(cmd.Context(), cmd.InOrStdin(), args[0], shellCommand(user), execOptions{mode: "auto"})
		},
	}

	cmd.Flags().StringVar(&user, "user", "", "User (name or uid) whose login shell to open")

	return cmd
}

// shellCommand is the command `berth shell` runs.
func shellCommand(user string) []string {
	if user == "" {
		return []string{"su", "-l"}
	}

	return []string{"sh", "-c", loginAs, "sh", user}
}
