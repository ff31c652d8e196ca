package main

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
)

// stream is what go test -json printed for two parallel tests, one of them with a failing
// subtest that dumps a daemon log (lines without a file:line prefix), with a build
// message in plain text before it.
const stream = `# github.com/x/y
{"Action":"run","Test":"TestA"}
{"Action":"output","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"output","Test":"TestA","Output":"=== PAUSE TestA\n"}
{"Action":"output","Test":"TestB","Output":"=== RUN   TestB\n"}
{"Action":"output","Test":"TestA","Output":"=== CONT  TestA\n"}
{"Action":"output","Test":"TestA/sub_one","Output":"=== RUN   TestA/sub_one\n"}
{"Action":"output","Test":"TestB","Output":"    b_test.go:4: b says\n"}
{"ImportPath":"github.com/x/y/lib","Action":"build-output","Output":"lib/a.go:3:1: vet: unreachable code\n"}
{"Action":"output","Test":"TestB","Output":"    b_test.go:6: a long line, first piece "}
{"Action":"output","Test":"TestB","Output":"and second piece\n"}
{"Action":"output","Test":"TestB","Output":"panic: a test's own message, not a crash\n"}
{"Action":"output","Test":"TestA/sub_one","Output":"    a_test.go:3: m1 log:\n"}
{"Action":"output","Test":"TestA/sub_one","Output":"        level=ERROR msg=\"raft: no leader\"\n"}
{"Action":"output","Test":"TestA/sub_one","Output":"    a_test.go:9: boom\n"}
{"Action":"output","Test":"TestA","Output":"--- FAIL: TestA (0.00s)\n"}
{"Action":"output","Test":"TestA/sub_one","Output":"    --- FAIL: TestA/sub_one (0.00s)\n"}
{"Action":"fail","Test":"TestA/sub_one"}
{"Action":"fail","Test":"TestA"}
{"Action":"output","Test":"TestB","Output":"--- PASS: TestB (0.00s)\n"}
{"Action":"pass","Test":"TestB"}
{"Action":"output","Output":"FAIL\n"}
{"Action":"fail"}
`

func TestRun(t *testing.T) {
	var out, log bytes.Buffer
	r := run(strings.NewReader(stream), &out, &log)
	report(&out, r)
	failed := r.failed

	// The log is the verbose text, with the NAME markers -json leaves out.
	for _, want := range []string{
		"# github.com/x/y\n",
		"=== NAME  TestB\n    b_test.go:4: b says\n",
		"=== NAME  TestA/sub_one\n    a_test.go:3: m1 log:\n        level=ERROR",
		"    --- FAIL: TestA/sub_one (0.00s)\n",
	} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %q:\n%s", want, log.String())
		}
	}

	// Live: progress lines only, the failed subtest's result included.
	live, _, _ := strings.Cut(out.String(), "\n=====")
	for _, want := range []string{
		"# github.com/x/y\n", "    --- FAIL: TestA/sub_one (0.00s)\n", "    b_test.go:4: b says\n", "FAIL\n",
		"lib/a.go:3:1: vet: unreachable code\n",                              // build output, whatever the file
		"    b_test.go:6: a long line, first piece and second piece\npanic:", // pieces joined
	} {
		if !strings.Contains(live, want) {
			t.Errorf("progress lacks %q:\n%s", want, live)
		}
	}

	if strings.Contains(live, "level=ERROR") || strings.Contains(live, "PAUSE") {
		t.Errorf("progress shows a line that is not progress:\n%s", live)
	}

	// At the end: each failed test's own output, the daemon log's lines included, and
	// nothing of the test that passed.
	if len(failed) != 2 || failed[0].test != "TestA/sub_one" || failed[1].test != "TestA" {
		t.Fatalf("failed = %+v, want TestA/sub_one then TestA", failed)
	}

	_, end, _ := strings.Cut(out.String(), "\n===== output of failed TestA/sub_one")
	if !strings.Contains(end, "        level=ERROR msg=\"raft: no leader\"\n    a_test.go:9: boom\n") || strings.Contains(end, "b says") {
		t.Errorf("the failures' report:\n%s", end)
	}

	// A line that merely starts like a panic, in a run where every test ended, is no crash.
	if strings.Contains(end, "panicked") {
		t.Errorf("a test's line reported as a panic:\n%s", end)
	}
}

// A timeout panics the test binary: go test -json gives the panic to the test that
// printed last (one that passed), and the tests it cut short never end. The report shows
// the panic with its list of running tests, and names those tests.
const timedOut = `{"Action":"run","Test":"TestA"}
{"Action":"output","Test":"TestA","Output":"=== RUN   TestA\n"}
{"Action":"run","Test":"TestB"}
{"Action":"output","Test":"TestB","Output":"=== RUN   TestB\n"}
{"Action":"output","Test":"TestB","Output":"--- PASS: TestB (0.00s)\n"}
{"Action":"output","Test":"TestB","Output":"panic: test timed out after 1s\n"}
{"Action":"output","Test":"TestB","Output":"\trunning tests:\n"}
{"Action":"output","Test":"TestB","Output":"\t\tTestA (1s)\n"}
{"Action":"pass","Test":"TestB"}
{"Action":"output","Output":"FAIL\tx/p\t1.020s\n"}
{"Action":"fail"}
`

func TestRunReportsAPanicAndWhatItCutShort(t *testing.T) {
	var out bytes.Buffer
	r := run(strings.NewReader(timedOut), io.Discard, io.Discard)
	report(&out, r)
	want := "panic: test timed out after 1s\n\trunning tests:\n\t\tTestA (1s)\n"
	if !strings.Contains(out.String(), want) || !strings.Contains(out.String(), "never ended: TestA =") || strings.Contains(out.String(), "TestB =") {
		t.Errorf("report of a timeout:\n%s", out.String())
	}
}

func TestTailKeepsTheLastLines(t *testing.T) {
	tl := &tail{}
	for i := 0; i < maxLines+5; i++ {
		tl.add(fmt.Sprint(i))
	}

	got := tl.lines()
	if len(got) != maxLines || got[0] != "5" || got[maxLines-1] != fmt.Sprint(maxLines+4) {
		t.Errorf("tail of %d lines: %d lines, %s .. %s", maxLines+5, len(got), got[0], got[len(got)-1])
	}
}
