package testutil

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestSkipOrFail runs SkipOrFail in a child test process, with and without strict mode,
// and checks that it skips in one and fails in the other.
func TestSkipOrFail(t *testing.T) {
	if os.Getenv("TESTUTIL_CHILD") != "" {
		SkipOrFail(t, "needs %s", "a unicorn")
		t.Fatal("SkipOrFail returned")
	}

	for _, tc := range []struct {
		env  []string
		fail bool
		want string
	}{
		{env: []string{"CI=", "BERTH_TEST_STRICT="}, want: "--- SKIP: TestSkipOrFail"},
		{env: []string{"CI=true", "BERTH_TEST_STRICT="}, fail: true, want: "needs a unicorn (CI/BERTH_TEST_STRICT set"},
		{env: []string{"CI=", "BERTH_TEST_STRICT=1"}, fail: true, want: "--- FAIL: TestSkipOrFail"},
	} {
		out, err := child("TestSkipOrFail", tc.env)
		if (err != nil) != tc.fail || !strings.Contains(string(out), tc.want) {
			t.Errorf("with %v: err %v, output:\n%s\nwant fail=%v and %q", tc.env, err, out, tc.fail, tc.want)
		}
	}
}

func TestRequireRoot(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("the root case only: TestSkipOrFail covers the rest")
	}

	RequireRoot(t, "test") // as root: returns, and the test goes on
}

// TestLookPath: an installed command is found; a missing one skips, or fails in strict
// mode (in a child test process, as TestSkipOrFail).
func TestLookPath(t *testing.T) {
	if os.Getenv("TESTUTIL_CHILD") != "" {
		LookPath(t, "berth-no-such-command", "nowhere")
		t.Fatal("LookPath returned for a missing command")
	}

	if p := LookPath(t, "sh", "any system"); !strings.HasSuffix(p, "/sh") {
		t.Errorf("LookPath(sh) = %q", p)
	}

	for _, tc := range []struct {
		env  []string
		fail bool
		want string
	}{
		{env: []string{"CI=", "BERTH_TEST_STRICT="}, want: "--- SKIP: TestLookPath"},
		{env: []string{"CI=true", "BERTH_TEST_STRICT="}, fail: true, want: "berth-no-such-command is not installed (nowhere) (CI/BERTH_TEST_STRICT set"},
	} {
		out, err := child("TestLookPath", tc.env)
		if (err != nil) != tc.fail || !strings.Contains(string(out), tc.want) {
			t.Errorf("with %v: err %v, output:\n%s\nwant fail=%v and %q", tc.env, err, out, tc.fail, tc.want)
		}
	}
}

// child runs test again in a child test process, with env added and TESTUTIL_CHILD set,
// and returns its output.
func child(test string, env []string) ([]byte, error) {
	cmd := exec.Command(os.Args[0], "-test.run", "^"+test+"$", "-test.v")
	cmd.Env = append(os.Environ(), append(env, "TESTUTIL_CHILD=1")...)

	return cmd.CombinedOutput()
}
