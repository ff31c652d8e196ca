package main

import (
	"fmt"
	"io"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/berth-dev/berth/shared/units"
)

// progressLine shows progress as one line rewritten in place (\r) on a
// terminal, and as plain lines, printed only when the step key changes,
// otherwise (logs, pipes).
type progressLine struct {
	w   io.Writer
	tty bool

	mu       sync.Mutex // progress callbacks may come from other goroutines
	lastKey  string
	lastLen  int
	lastDraw time.Time
}

func newProgressLine(w io.Writer) *progressLine {
	return &progressLine{w: w, tty: isTerminal(w)}
}

// Update shows text; key identifies the step (e.g. "Transferring image: 40%")
// so non-terminal output gets one line per step rather than per call.
func (p *progressLine) Update(key, text string) {
	p.mu.Lock()
	defer p.mu.Unlock()

	if !p.tty {
		if key != p.lastKey {
			_, _ = fmt.Fprintln(p.w, text)
			p.lastKey = key
		}

		return
	}

	// Redraw at most 10 times a second unless the step changed.
	if key == p.lastKey && time.Since(p.lastDraw) < 100*time.Millisecond {
		return
	}

	n := utf8.RuneCountInString(text)
	_, _ = fmt.Fprintf(p.w, "\r%s%s", text, strings.Repeat(" ", max(0, p.lastLen-n)))
	p.lastKey, p.lastLen, p.lastDraw = key, n, time.Now()
}

// Done clears the progress line and prints msg (if any) on its own line.
func (p *progressLine) Done(msg string) {
	p.mu.Lock()
	defer p.mu.Unlock()

	if p.tty && p.lastLen > 0 {
		_, _ = fmt.Fprintf(p.w, "\r%s\r", strings.Repeat(" ", p.lastLen))
		p.lastLen = 0
	}

	p.lastKey = ""
	if msg != "" {
		_, _ = fmt.Fprintln(p.w, msg)
	}
}

// transferProgress returns an upload callback that shows percentage and speed.
func transferProgress(p *progressLine, what string) func(sent, total int64) {
	start := time.Now()

	return func(sent, total int64) {
		speed := float64(sent) / max(time.Since(start).Seconds(), 0.001)
		if total <= 0 {
			p.Update(fmt.Sprintf("%s %d", what, sent>>24), fmt.Sprintf("%s: %s (%s/s)", what, units.Bytes(sent), units.Bytes(int64(speed))))
			return
		}

		pct := sent * 100 / total
		p.Update(fmt.Sprintf("%s %d", what, pct/10), fmt.Sprintf("%s: %d%% (%s/s)", what, pct, units.Bytes(int64(speed))))
	}
}
