package main

import (
	"fmt"

	"github.com/spf13/cobra"
)

// usageError is a command-line mistake: printed with a hint, never with a
// stack of usage text.
type usageError struct {
	cmd *cobra.Command
	err error
}

func (e *usageError) Error() string { return e.err.Error() }

func (e *usageError) Unwrap() error { return e.err }

func (e *usageError) hint() string {
	if e.cmd.HasSubCommands() {
		return fmt.Sprintf("Run '%s --help' for the list of commands.", e.cmd.CommandPath())
	}

	return fmt.Sprintf("Usage: %s (see '%s --help')", e.cmd.UseLine(), e.cmd.CommandPath())
}

// rangeArgs accepts between lo and hi arguments (hi < 0: no upper bound).
func rangeArgs(lo, hi int) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		n := len(args)
		if n >= lo && (hi < 0 || n <= hi) {
			return nil
		}

		var want string
		switch {
		case lo == hi:
			want = fmt.Sprintf("exactly %d", lo)
		case hi < 0:
			want = fmt.Sprintf("at least %d", lo)
		default:
			want = fmt.Sprintf("%d to %d", lo, hi)
			if hi == lo+1 {
				want = fmt.Sprintf("%d or %d", lo, hi)
			}
		}

		noun := "arguments"
		if hi == 1 || (lo == 1 && hi < 0) {
			noun = "argument"
		}

		if lo == 0 && hi == 0 {
			want, noun = "no", "arguments"
		}

		return &usageError{cmd: cmd, err: fmt.Errorf("invalid number of arguments: %s takes %s %s, got %d", cmd.CommandPath(), want, noun, n)}
	}
}

// groupArgs refuses arguments to commands that only group subcommands.
func groupArgs(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return nil
	}

	return &usageError{cmd: cmd, err: fmt.Errorf("unknown command %q for %q", args[0], cmd.CommandPath())}
}

// groupRun shows the help of a command group called without a subcommand.
func groupRun(cmd *cobra.Command, _ []string) error {
	return cmd.Help()
}

// newGroup makes a command that only holds subcommands.
func newGroup(use, short string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, Args: groupArgs, RunE: groupRun}
	cmd.AddCommand(subs...)

	return cmd
}
