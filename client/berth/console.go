package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/termios"
)

func newConsoleCmd(a *app) *cobra.Command {
	var showLog bool
	cmd := &cobra.Command{
		Use:   "console [REMOTE:]NAME",
		Short: "Attach to an instance's console",
		Long: `Attach to an instance's console (detach with Ctrl+a q), or print its log
with --show-log.`,
		Args: rangeArgs(1, 1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if showLog {
				return a.consoleLog(cmd.Context(), args[0])
			}

			return a.console(cmd.Context(), cmd.InOrStdin(), args[0])
		},
	}

	cmd.Flags().BoolVar(&showLog, "show-log", false, "Print the console log")

	return cmd
}

func (a *app) consoleLog(ctx context.Context, name string) error {
	c, name, err := a.instanceTarget(name)
	if err != nil {
		return err
	}

	rc, err := c.GetInstanceConsoleLog(ctx, name)
	if err != nil {
		return err
	}

	defer func() { _ = rc.Close() }()

	data, err := io.ReadAll(rc)
	if err != nil {
		return fmt.Errorf("reading the console log: %w", err)
	}

	// lxc's layout.
	a.printf("\nConsole log:\n\n%s\n", data)

	return nil
}

func (a *app) console(ctx context.Context, in io.Reader, name string) error {
	inFd, ok := terminalFd(in)
	if !ok {
		return errors.New("the console needs a terminal on standard input (use --show-log to print the log)")
	}

	c, name, err := a.instanceTarget(name)
	if err != nil {
		return err
	}

	req := api.InstanceConsolePost{Type: api.ConsoleTypeConsole}
	outFd, stdoutTTY := terminalFd(a.out)
	if stdoutTTY {
		req.Width, req.Height, _ = termios.GetSize(outFd)
	}

	a.printf("To detach from the console, press: <ctrl>+a q\n\r")

	restore, err := termios.MakeRaw(inFd)
	if err != nil {
		return err
	}

	defer func() { _ = restore() }()

	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGWINCH)
	defer signal.Stop(sigs)

	detach := make(chan struct{})
	var once sync.Once
	term := &detachReader{r: in, detach: func() { once.Do(func() { close(detach) }) }}

	sess, err := c.ConsoleInstance(ctx, name, req, client.ConsoleArgs{Terminal: term, Output: a.out})
	if err != nil {
		return err
	}

	go func() {
		for {
			select {
			case <-detach:
				sess.Detach()
				return
			case <-sess.OutputDone():
				return
			case <-sigs:
				if stdoutTTY {
					w, h, err := termios.GetSize(outFd)
					if err == nil {
						_ = sess.Resize(w, h)
					}
				}
			}
		}
	}()

	return sess.Wait(context.WithoutCancel(ctx))
}

// detachReader passes terminal input through until Ctrl+a q: then it calls
// detach and reports EOF. The Ctrl+a itself is passed on (as lxc does), the
// q is not.
type detachReader struct {
	r        io.Reader
	detach   func()
	escape   bool // the last byte seen was Ctrl+a
	detached bool
}

func (d *detachReader) Read(p []byte) (int, error) {
	if d.detached {
		return 0, io.EOF
	}

	n, err := d.r.Read(p)
	for i := range n {
		if d.escape && p[i] == 'q' {
			d.detached = true
			d.detach()

			return i, io.EOF
		}

		d.escape = p[i] == 0x01
	}

	return n, err
}
