package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/termios"
)

// exitError ends berth with a given exit code (a command's, passed through).
// err, if set, is printed as the usual `Error: ...` line.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}

	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// execOptions are the flags of `berth exec`, as in lxc 5.0.
type execOptions struct {
	mode                string
	forceInteractive    bool
	forceNonInteractive bool
	disableStdin        bool
	user                uint32
	group               uint32
	cwd                 string
	env                 []string
}

func newExecCmd(a *app) *cobra.Command {
	o := execOptions{}
	cmd := &cobra.Command{
		Use:   "exec [REMOTE:]NAME [--] COMMAND [ARGS...]",
		Short: "Run a command in an instance",
		Long: `Run a command in an instance.

The command runs with a terminal (interactive mode) when both standard input
and standard output are terminals, unless -t or -T says otherwise. The exit
code of the command is berth's exit code. Put "--" before a command that has
options of its own.`,
		Example: `  berth exec c1 -- ls -l /
  berth exec c1 --user 1000 --cwd /tmp --env FOO=bar -- sh -c 'echo $FOO'`,
		Args: rangeArgs(2, -1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.exec(cmd.Context(), cmd.InOrStdin(), args[0], args[1:], o)
		},
	}

	f := cmd.Flags()
	f.StringVar(&o.mode, "mode", "auto", "Override the terminal mode (auto, interactive or non-interactive)")
	f.BoolVarP(&o.forceInteractive, "force-interactive", "t", false, "Force pseudo-terminal allocation")
	f.BoolVarP(&o.forceNonInteractive, "force-noninteractive", "T", false, "Disable pseudo-terminal allocation")
	f.BoolVarP(&o.disableStdin, "disable-stdin", "n", false, "Disable stdin (reads from /dev/null)")
	f.Uint32Var(&o.user, "user", 0, "User ID to run the command as")
	f.Uint32Var(&o.group, "group", 0, "Group ID to run the command as")
	f.StringVar(&o.cwd, "cwd", "", "Directory to run the command in (default /root)")
	f.StringArrayVar(&o.env, "env", nil, "Environment variable to set (e.g. HOME=/home/foo)")

	return cmd
}

// interactive picks the mode like lxc: flags first, else a terminal on both
// stdin and stdout.
func (o execOptions) interactive(stdinTTY, stdoutTTY bool) (bool, error) {
	if o.forceInteractive && o.forceNonInteractive {
		return false, errors.New("you can't pass -t and -T at the same time")
	}

	if o.mode != "auto" && (o.forceInteractive || o.forceNonInteractive) {
		return false, errors.New("you can't pass -t or -T at the same time as --mode")
	}

	switch {
	case o.forceInteractive || o.mode == "interactive":
		return true, nil
	case o.forceNonInteractive || o.mode == "non-interactive":
		return false, nil
	case o.mode != "auto":
		return false, fmt.Errorf("invalid --mode %q: use auto, interactive or non-interactive", o.mode)
	case o.disableStdin:
		return false, nil
	}

	return stdinTTY && stdoutTTY, nil
}

// execEnv is the environment sent with an exec: TERM from ours, then --env.
func execEnv(term string, pairs []string) (map[string]string, error) {
	env := map[string]string{}
	if term != "" {
		env["TERM"] = term
	}

	for _, kv := range pairs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("bad key=value pair in --env: %q", kv)
		}

		env[k] = v
	}

	return env, nil
}

// forwardedSignals are relayed to the command, as lxc does. SIGWINCH becomes
// a window-resize instead.
var forwardedSignals = []os.Signal{
	syscall.SIGWINCH,
	syscall.SIGTERM, syscall.SIGINT, syscall.SIGQUIT, syscall.SIGABRT,
	syscall.SIGTSTP, syscall.SIGTTIN, syscall.SIGTTOU, syscall.SIGUSR1,
	syscall.SIGUSR2, syscall.SIGSEGV, syscall.SIGCONT, syscall.SIGHUP,
}

// terminalFd returns the fd of v if it is an *os.File on a terminal.
func terminalFd(v any) (int, bool) {
	f, ok := v.(*os.File)
	if !ok || !termios.IsTerminal(int(f.Fd())) {
		return -1, false
	}

	return int(f.Fd()), true
}

// exec runs command in instance name with the local stdio and returns an
// *exitError carrying the command's exit code when it is not 0.
func (a *app) exec(ctx context.Context, in io.Reader, name string, command []string, o execOptions) error {
	inFd, stdinTTY := terminalFd(in)
	outFd, stdoutTTY := terminalFd(a.out)

	interactive, err := o.interactive(stdinTTY, stdoutTTY)
	if err != nil {
		return err
	}

	env, err := execEnv(os.Getenv("TERM"), o.env)
	if err != nil {
		return err
	}

	c, name, err := a.instanceTarget(name)
	if err != nil {
		return err
	}

	req := api.InstanceExecPost{
		Command: command, WaitForWS: true, Interactive: interactive, Environment: env,
		User: o.user, Group: o.group, Cwd: o.cwd,
	}

	if stdoutTTY {
		req.Width, req.Height, _ = termios.GetSize(outFd)
	}

	args := client.ExecArgs{Stdin: in, Stdout: a.out, Stderr: a.errOut}
	if o.disableStdin {
		args.Stdin = nil
	}

	// Queue signals from now on; they are relayed once the session exists.
	sigs := make(chan os.Signal, 16)
	signal.Notify(sigs, forwardedSignals...)
	defer signal.Stop(sigs)

	if interactive && stdinTTY {
		restore, err := termios.MakeRaw(inFd)
		if err != nil {
			return err
		}

		// Signals are caught and relayed, so every exit path runs this.
		defer func() { _ = restore() }()
	}

	sess, err := c.ExecInstance(ctx, name, req, args)
	if err != nil {
		return err
	}

	done := make(chan struct{})
	defer close(done)

	go relaySignals(sigs, done, sess, interactive && stdoutTTY, outFd, stdinTTY)

	// The user's Ctrl-C is the command's business now (relayed above), so
	// the wait must not end with the CLI's signal-cancelled context.
	code, err := sess.Wait(context.WithoutCancel(ctx))
	if err != nil {
		if code >= 0 {
			return &exitError{code: code, err: err}
		}

		return err
	}

	if code < 0 {
		return errors.New("the server reported no exit code")
	}

	if code != 0 {
		return &exitError{code: code}
	}

	return nil
}

// relaySignals forwards caught signals to the session until done closes.
func relaySignals(sigs <-chan os.Signal, done <-chan struct{}, sess *client.ExecSession, resize bool, outFd int, haveTTY bool) {
	for {
		var sig os.Signal
		select {
		case <-done:
			return
		case sig = <-sigs:
		}

		switch sig {
		case syscall.SIGWINCH:
			if !resize {
				continue
			}

			w, h, err := termios.GetSize(outFd)
			if err == nil {
				_ = sess.Resize(w, h)
			}
		case syscall.SIGHUP:
			// Without a controlling terminal a hangup means "go away".
			if !haveTTY {
				sig = syscall.SIGTERM
			}

			_ = sess.Signal(int(sig.(syscall.Signal)))
		default:
			_ = sess.Signal(int(sig.(syscall.Signal)))
		}
	}
}
