// Package termios puts the local terminal in raw mode and reads its size, for
// the CLI's interactive exec and console. Restoring is what matters: a shell
// left in raw mode after berth exits is unusable.
package termios

import (
	"fmt"
	"sync"

	"golang.org/x/term"
)

// IsTerminal reports whether fd is a terminal.
func IsTerminal(fd int) bool { return term.IsTerminal(fd) }

// GetSize returns the terminal's width and height in characters.
func GetSize(fd int) (width, height int, err error) {
	width, height, err = term.GetSize(fd)
	if err != nil {
		return 0, 0, fmt.Errorf("getting the terminal size: %w", err)
	}

	return width, height, nil
}

// MakeRaw puts the terminal fd in raw mode (no echo, no line editing, no
// signals from keys, no output processing) and returns the function that puts
// the previous settings back. restore may be called any number of times, from
// any goroutine (a deferred call and a signal handler, say): only the first
// call acts, later ones return its result.
func MakeRaw(fd int) (restore func() error, err error) {
	old, err := term.MakeRaw(fd)
	if err != nil {
		return nil, fmt.Errorf("putting the terminal in raw mode: %w", err)
	}

	var once sync.Once
	var rerr error
	restore = func() error {
		once.Do(func() {
			rerr = term.Restore(fd, old)
			if rerr != nil {
				rerr = fmt.Errorf("restoring the terminal: %w", rerr)
			}
		})

		return rerr
	}

	return restore, nil
}
