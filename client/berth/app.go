package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/client/config"
)

// app holds what every command needs: input and output streams, the client
// configuration and the clients of the remotes used, made on first use.
type app struct {
	in      io.Reader
	out     io.Writer
	errOut  io.Writer
	socket  string // --socket; empty means client.DefaultSocketPath()
	confDir string // empty means config.DefaultDir()

	conf    *config.Config
	clients map[string]*client.Client
}

func newApp(out, errOut io.Writer) *app {
	return &app{in: os.Stdin, out: out, errOut: errOut}
}

// client connects to the default remote on first use, so that usage errors
// never need a daemon.
func (a *app) client() (*client.Client, error) {
	conf, err := a.config()
	if err != nil {
		return nil, err
	}

	return a.remoteClient(conf.DefaultRemote)
}

// isTerminal reports whether w is a terminal, to pick the progress style.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

// printf writes to standard output, ignoring write errors like fmt.Printf.
func (a *app) printf(format string, args ...any) {
	_, _ = fmt.Fprintf(a.out, format, args...)
}

// run executes the command line and returns the process exit code. Errors are
// printed as one `Error: ...` line; usage errors add a hint line.
func run(ctx context.Context, args []string, a *app) int {
	root := newRootCmd(a, args)
	root.SetArgs(args)

	err := root.ExecuteContext(ctx)
	if err == nil {
		return 0
	}

	code := 1
	var ee *exitError
	if errors.As(err, &ee) {
		// A command run by exec/shell: its exit code is ours.
		code = ee.code
		if ee.err == nil {
			return code
		}
	}

	msg := strings.TrimSpace(err.Error())
	if msg != "" {
		msg = strings.ToUpper(msg[:1]) + msg[1:]
	}

	_, _ = fmt.Fprintf(a.errOut, "Error: %s\n", msg)

	var ue *usageError
	if errors.As(err, &ue) {
		_, _ = fmt.Fprintln(a.errOut, ue.hint())
	} else if strings.HasPrefix(err.Error(), "unknown command") {
		_, _ = fmt.Fprintln(a.errOut, "Run 'berth --help' for the list of commands.")
	}

	return code
}

// topCommand is a command of the root: the names it answers to and how it is built.
type topCommand struct {
	names []string
	build func(*app) *cobra.Command
}

// topCommands are the root's commands. A command line that names one first gets only
// that one built: building all of them with their flags is a tenth of a short
// command's time where page faults are dear (a VM's, doc/host-tuning.md), and a
// `berth start` pays it before its request. TestTopCommandNames keeps the names true.
var topCommands = []topCommand{
	{[]string{"launch"}, func(a *app) *cobra.Command { return newLaunchCmd(a, true) }},
	{[]string{"init"}, func(a *app) *cobra.Command { return newLaunchCmd(a, false) }},
	{[]string{"start"}, newStartCmd},
	{[]string{"stop"}, newStopCmd},
	{[]string{"restart"}, newRestartCmd},
	{[]string{"pause", "freeze"}, newPauseCmd},
	{[]string{"resume", "unfreeze"}, newResumeCmd},
	{[]string{"delete", "rm"}, newDeleteCmd},
	{[]string{"move", "mv", "rename"}, newMoveCmd},
	{[]string{"list", "ls"}, newListCmd},
	{[]string{"info"}, newInfoCmd},
	{[]string{"file"}, newFileCmd},
	{[]string{"snapshot"}, newSnapshotCmd},
	{[]string{"restore"}, newRestoreCmd},
	{[]string{"copy", "cp"}, newCopyCmd},
	{[]string{"publish"}, newPublishCmd},
	{[]string{"export"}, newExportCmd},
	{[]string{"import"}, newImportCmd},
	{[]string{"image"}, newImageCmd},
	{[]string{"profile"}, newProfileCmd},
	{[]string{"config"}, newConfigCmd},
	{[]string{"network"}, newNetworkCmd},
	{[]string{"storage"}, newStorageCmd},
	{[]string{"version"}, newVersionCmd},
	{[]string{"exec"}, newExecCmd},
	{[]string{"shell"}, newShellCmd},
	{[]string{"console"}, newConsoleCmd},
	{[]string{"remote"}, newRemoteCmd},
	{[]string{"cluster"}, newClusterCmd},
}

// newRootCmd builds the root with the command args names first, or with all of them
// when args start otherwise (a flag, help, a typo to suggest for, nothing).
func newRootCmd(a *app, args []string) *cobra.Command {
	root := &cobra.Command{
		Use:   "berth",
		Short: "Command line client for berthd, the Berth system container manager",
		// Errors are printed by run, once, without the usage dump.
		SilenceUsage:      true,
		SilenceErrors:     true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
		Args:              groupArgs,
		RunE:              groupRun,
	}

	root.SetOut(a.out)
	root.SetErr(a.errOut)
	root.PersistentFlags().StringVar(&a.socket, "socket", "", "Path to berthd's unix socket (default $BERTH_SOCKET, $BERTH_DIR/unix.socket or "+client.DefaultSocket+")")
	root.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return &usageError{cmd: cmd, err: err}
	})

	if c := invokedCommand(args); c != nil {
		root.AddCommand(c.build(a))
		return root
	}

	for _, c := range topCommands {
		root.AddCommand(c.build(a))
	}

	return root
}

// invokedCommand is the root command args begin with, if any.
func invokedCommand(args []string) *topCommand {
	if len(args) == 0 {
		return nil
	}

	for i := range topCommands {
		if slices.Contains(topCommands[i].names, args[0]) {
			return &topCommands[i]
		}
	}

	return nil
}
