package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
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
	root := newRootCmd(a)
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

func newRootCmd(a *app) *cobra.Command {
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

	root.AddCommand(
		newLaunchCmd(a, true),
		newLaunchCmd(a, false),
		newStartCmd(a),
		newStopCmd(a),
		newRestartCmd(a),
		newPauseCmd(a),
		newResumeCmd(a),
		newDeleteCmd(a),
		newMoveCmd(a),
		newListCmd(a),
		newInfoCmd(a),
		newFileCmd(a),
		newSnapshotCmd(a),
		newRestoreCmd(a),
		newCopyCmd(a),
		newPublishCmd(a),
		newExportCmd(a),
		newImportCmd(a),
		newImageCmd(a),
		newProfileCmd(a),
		newConfigCmd(a),
		newNetworkCmd(a),
		newStorageCmd(a),
		newVersionCmd(a),
		newExecCmd(a),
		newShellCmd(a),
		newConsoleCmd(a),
		newRemoteCmd(a),
		newClusterCmd(a),
	)

	return root
}
