package testutil

import (
	"bytes"
	"errors"
	"os/exec"
	"strings"
	"testing"
)

// promtoolLintExit is promtool's exit status when the input parsed but has lint problems.
const promtoolLintExit = 3

// Promtool runs `promtool check metrics` (Debian package prometheus) on an exposition. It
// fails t on a parse error and on any lint complaint but those in allowed (metric name ->
// complaint). Without promtool it skips, or fails in strict mode.
func Promtool(t testing.TB, exposition []byte, allowed map[string]string) {
	t.Helper()

	bin, err := exec.LookPath("promtool")
	if err != nil {
		SkipOrFail(t, "promtool (Debian package prometheus) is not installed")
	}

	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = bytes.NewReader(exposition)
	out, err := cmd.CombinedOutput()

	var exit *exec.ExitError
	switch {
	case err == nil:
		return
	case !errors.As(err, &exit) || exit.ExitCode() != promtoolLintExit:
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}

	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		name, complaint, _ := strings.Cut(line, " ")
		if allowed[name] != complaint {
			t.Errorf("promtool check metrics: %s", line)
		}
	}
}
