// Command testlog turns `go test -json` into what a person reads while the suite runs and
// what CI shows afterwards. It writes the whole verbose text to -log; it prints the
// progress lines (test starts, results, the tests' own file:line messages) as they come;
// and when the run ends it prints, for every test that failed, the last lines of that
// test's own output, attributed by go test itself.
//
// It exists because CI keeps only what the suite prints: a progress filter over the
// interleaved text of parallel tests dropped a failed subtest's name and every line a
// test printed without a file:line prefix (a daemon's log dumped on failure), so a
// failure in CI could not be told apart from its neighbours.
package main

import (
	"bufio"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
)

// event is the part of a test2json event that is used here.
type event struct {
	Action string
	Test   string
	Output string
}

// progress is what is printed live: RUN/CONT/NAME markers, results at any depth, the
// package's summary, panics, and the tests' own messages (they carry a _test.go:N prefix).
var progress = regexp.MustCompile(`^(=== (RUN|CONT|NAME)|\s*--- |PASS|FAIL|ok|panic)|_test\.go`)

// maxLines is how many of its last lines a failed test's output is shown with: enough for
// a daemon's log tail and the assertions after it, bounded so a runaway test cannot bury
// the others.
const maxLines = 300

func main() {
	logPath := flag.String("log", "", "file the whole verbose output is written to")
	flag.Parse()
	var log io.Writer = io.Discard
	if *logPath != "" {
		f, err := os.Create(*logPath)
		if err != nil {
			fmt.Fprintln(os.Stderr, "testlog:", err)
			os.Exit(1)
		}

		defer f.Close()
		log = f
	}

	r := run(os.Stdin, os.Stdout, log)
	report(os.Stdout, r)
}

// failure is a failed test and the tail of its output.
type failure struct {
	test  string
	lines []string
}

// result is what the end of a run reports.
type result struct {
	failed []failure
	// panicked is the first panic and the lines after it (a timeout's "running tests"
	// list among them): go test -json attributes it to whichever test printed last, and
	// the tests it interrupted never end.
	panicked []string
	// unfinished are the tests that started and never passed, failed or were skipped.
	unfinished []string
}

// panicLines is how many lines of a panic are kept: the message, the running tests, the
// first goroutines.
const panicLines = 80

// run copies in (go test -json, or plain text where go test printed some) to log as
// text, prints the progress lines to out, and returns the failed tests in the order they
// ended, each with the last maxLines lines of its own output, and what a panic left.
func run(in io.Reader, out, log io.Writer) result {
	tails := map[string]*tail{}
	var r result
	running := map[string]bool{}
	var order []string
	logged, shown := &namer{}, &namer{}
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64*1024), 16*1024*1024)
	for sc.Scan() {
		line := sc.Bytes()
		var ev event
		if len(line) == 0 || line[0] != '{' || json.Unmarshal(line, &ev) != nil {
			// Not an event (a build error, the toolchain's own messages): as it is.
			fmt.Fprintf(log, "%s\n", line)
			fmt.Fprintf(out, "%s\n", line)
			continue
		}

		if ev.Output != "" {
			if (r.panicked == nil && strings.HasPrefix(ev.Output, "panic: ")) || (r.panicked != nil && len(r.panicked) < panicLines) {
				r.panicked = append(r.panicked, strings.TrimSuffix(ev.Output, "\n"))
			}

			logged.write(log, ev)
			if progress.MatchString(ev.Output) {
				shown.write(out, ev)
			}

			if ev.Test != "" {
				t := tails[ev.Test]
				if t == nil {
					t = &tail{}
					tails[ev.Test] = t
				}

				t.add(strings.TrimSuffix(ev.Output, "\n"))
			}
		}

		if ev.Test == "" {
			continue
		}

		switch ev.Action {
		case "run":
			running[ev.Test] = true
			order = append(order, ev.Test)
		case "pass", "skip":
			delete(running, ev.Test)
		case "fail":
			delete(running, ev.Test)
			var lines []string
			if t := tails[ev.Test]; t != nil {
				lines = t.lines()
			}

			r.failed = append(r.failed, failure{ev.Test, lines})
		}
	}

	if err := sc.Err(); err != nil {
		fmt.Fprintln(out, "testlog: reading the test output:", err)
	}

	for _, t := range order {
		if running[t] {
			r.unfinished = append(r.unfinished, t)
		}
	}

	return r
}

// report prints each failed test's output tail (subtests before the tests holding them),
// then a panic and the tests it left unfinished.
func report(out io.Writer, r result) {
	for _, f := range r.failed {
		fmt.Fprintf(out, "\n===== output of failed %s (its last %d lines at most) =====\n", f.test, maxLines)
		for _, l := range f.lines {
			fmt.Fprintln(out, l)
		}
	}

	if r.panicked != nil {
		fmt.Fprintf(out, "\n===== the test binary panicked (its first %d lines at most) =====\n", panicLines)
		for _, l := range r.panicked {
			fmt.Fprintln(out, l)
		}
	}

	if r.unfinished != nil {
		fmt.Fprintf(out, "\n===== started and never ended: %s =====\n", strings.Join(r.unfinished, ", "))
	}
}

// namer writes output lines, each preceded by an "=== NAME" line (as go test -v prints
// them) when it belongs to another test than the line before it: -json leaves those
// markers out, and parallel tests' lines interleave.
type namer struct{ last string }

func (n *namer) write(w io.Writer, ev event) {
	if ev.Test != n.last && ev.Test != "" && !strings.HasPrefix(ev.Output, "=== ") && !strings.HasPrefix(strings.TrimLeft(ev.Output, " "), "--- ") {
		fmt.Fprintf(w, "=== NAME  %s\n", ev.Test)
	}

	n.last = ev.Test
	fmt.Fprint(w, ev.Output)
}

// tail keeps the last maxLines lines it is given.
type tail struct {
	ring []string
	next int
	full bool
}

func (t *tail) add(l string) {
	if len(t.ring) < maxLines {
		t.ring = append(t.ring, l)
		return
	}

	t.ring[t.next] = l
	t.next = (t.next + 1) % maxLines
	t.full = true
}

func (t *tail) lines() []string {
	if !t.full {
		return t.ring
	}

	return append(append([]string{}, t.ring[t.next:]...), t.ring[:t.next]...)
}
