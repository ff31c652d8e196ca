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
			// Reading must go on: a reader that stops kills go test with SIGPIPE.
			fmt.Fprintln(os.Stdout, "testlog: no log file, the output is not kept:", err)
		} else {
			defer f.Close()
			log = f
		}
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
	// panicked is the last panic and the lines after it (a timeout's "running tests"
	// list among them): go test -json attributes it to whichever test printed last, and
	// the tests it interrupted never end. Reported when tests were left unfinished or the
	// package failed with no failed test.
	panicked []string
	// unfinished are the tests that started and never passed, failed or were skipped.
	unfinished []string
	// pkgFailed: the package (or its build) failed.
	pkgFailed bool
}

// panicLines is how many lines of a panic are kept: the message, the running tests, the
// first goroutines.
const panicLines = 80

// reader turns the event stream into the log, the progress and the result.
type reader struct {
	out, log      io.Writer
	logged, shown namer
	tails         map[string]*tail  // each running test's output, dropped when it ends
	partial       map[string]string // a test's output line not ended yet
	running       map[string]bool
	order         []string
	r             result
}

// run copies in (go test -json, or plain text where go test printed some) to log as
// text, prints the progress lines to out, and returns the failed tests in the order they
// ended, each with the last maxLines lines of its own output, and what a panic left.
func run(in io.Reader, out, log io.Writer) result {
	rd := &reader{out: out, log: log, tails: map[string]*tail{}, partial: map[string]string{}, running: map[string]bool{}}
	br := bufio.NewReaderSize(in, 64*1024)
	for {
		line, err := br.ReadString('\n')
		if line != "" {
			rd.input(strings.TrimSuffix(line, "\n"))
		}

		if err != nil {
			if err != io.EOF {
				fmt.Fprintln(out, "testlog: reading the test output:", err)
			}

			break
		}
	}

	for test, rest := range rd.partial {
		rd.line(event{Action: "output", Test: test, Output: rest + "\n"})
	}

	for _, t := range rd.order {
		if rd.running[t] {
			rd.r.unfinished = append(rd.r.unfinished, t)
		}
	}

	return rd.r
}

// input takes one line of go test -json's output.
func (rd *reader) input(line string) {
	var ev event
	if line == "" || line[0] != '{' || json.Unmarshal([]byte(line), &ev) != nil {
		// Not an event (the toolchain's own messages): as it is.
		fmt.Fprintln(rd.log, line)
		fmt.Fprintln(rd.out, line)
		return
	}

	switch {
	case ev.Action == "build-output":
		// The compiler's and vet's messages: all of them, or CI shows only "[build failed]".
		fmt.Fprint(rd.log, ev.Output)
		fmt.Fprint(rd.out, ev.Output)
	case ev.Output != "":
		// test2json splits a long line into several events, only the last ending in a
		// newline: the pieces are joined before the line is filtered or kept.
		text := rd.partial[ev.Test] + ev.Output
		delete(rd.partial, ev.Test)
		for text != "" {
			l, rest, ok := strings.Cut(text, "\n")
			if !ok {
				rd.partial[ev.Test] = l
				break
			}

			rd.line(event{Action: ev.Action, Test: ev.Test, Output: l + "\n"})
			text = rest
		}
	}

	rd.end(ev)
}

// line handles one whole output line of a test (or of the package, Test empty).
func (rd *reader) line(ev event) {
	text := strings.TrimSuffix(ev.Output, "\n")
	if strings.HasPrefix(ev.Output, "panic: ") {
		rd.r.panicked = []string{}
	}

	if rd.r.panicked != nil && len(rd.r.panicked) < panicLines {
		rd.r.panicked = append(rd.r.panicked, text)
	}

	rd.logged.write(rd.log, ev)
	if progress.MatchString(ev.Output) {
		rd.shown.write(rd.out, ev)
	}

	if ev.Test != "" {
		t := rd.tails[ev.Test]
		if t == nil {
			t = &tail{}
			rd.tails[ev.Test] = t
		}

		t.add(text)
	}
}

// end records a test's start and end.
func (rd *reader) end(ev event) {
	if ev.Test == "" {
		if ev.Action == "fail" || ev.Action == "build-fail" {
			rd.r.pkgFailed = true
		}

		return
	}

	switch ev.Action {
	case "run":
		rd.running[ev.Test] = true
		rd.order = append(rd.order, ev.Test)
	case "pass", "skip":
		delete(rd.running, ev.Test)
		delete(rd.tails, ev.Test)
	case "fail":
		delete(rd.running, ev.Test)
		if rest, ok := rd.partial[ev.Test]; ok {
			delete(rd.partial, ev.Test)
			rd.line(event{Action: "output", Test: ev.Test, Output: rest + "\n"})
		}

		var lines []string
		if t := rd.tails[ev.Test]; t != nil {
			lines = t.lines()
		}

		delete(rd.tails, ev.Test)
		rd.r.failed = append(rd.r.failed, failure{ev.Test, lines})
	}
}

// report prints each failed test's output tail (subtests before the tests holding them),
// then a panic that cut tests short (or failed the package on its own), and those tests.
func report(out io.Writer, r result) {
	for _, f := range r.failed {
		fmt.Fprintf(out, "\n===== output of failed %s (its last %d lines at most) =====\n", f.test, maxLines)
		for _, l := range f.lines {
			fmt.Fprintln(out, l)
		}
	}

	if r.panicked != nil && (r.unfinished != nil || (r.pkgFailed && r.failed == nil)) {
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
