package main

import (
	"io"
	"slices"
	"testing"
)

// TestTopCommandNames checks that each root command answers to exactly the names
// topCommands gives it, so that a command line naming it builds the right one.
func TestTopCommandNames(t *testing.T) {
	a := newApp(io.Discard, io.Discard)
	seen := map[string]bool{}
	for _, c := range topCommands {
		cmd := c.build(a)
		got := append([]string{cmd.Name()}, cmd.Aliases...)
		if !slices.Equal(got, c.names) {
			t.Errorf("command %s answers to %v, topCommands says %v", cmd.Name(), got, c.names)
		}

		for _, n := range c.names {
			if seen[n] {
				t.Errorf("two commands answer to %q", n)
			}

			seen[n] = true
		}
	}

	full := newRootCmd(a, nil)
	if len(full.Commands()) != len(topCommands) {
		t.Errorf("the full root has %d commands, want %d", len(full.Commands()), len(topCommands))
	}

	one := newRootCmd(a, []string{"rm", "c1"})
	if cmds := one.Commands(); len(cmds) != 1 || cmds[0].Name() != "delete" {
		t.Errorf("the root for `rm c1` has %d commands", len(cmds))
	}

	for _, args := range [][]string{{"--socket", "x", "start"}, {"help", "start"}, {"strat"}} {
		if n := len(newRootCmd(a, args).Commands()); n != len(topCommands) {
			t.Errorf("the root for %v has %d commands, want all %d", args, n, len(topCommands))
		}
	}
}
