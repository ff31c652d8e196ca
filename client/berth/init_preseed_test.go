package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// runPreseedCLI runs berth with stdin against a socket nothing listens on: a preseed
// error must come before any connection.
func runPreseedCLI(t *testing.T, stdin string, args ...string) (string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	a := newApp(&out, &errOut)
	a.in = strings.NewReader(stdin)
	a.confDir = t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	code := run(ctx, append([]string{"--socket", filepath.Join(t.TempDir(), "none.socket")}, args...), a)
	return errOut.String(), code
}

func TestInitPreseedErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "p.yaml")
	err := os.WriteFile(file, []byte("networks:\n- name: br1\n  bogus: 1\n"), 0o600)
	if err != nil {
		t.Fatal(err)
	}

	cases := []struct {
		stdin string
		args  []string
		want  string
	}{
		{"bogus_key: 1\n", []string{"init", "--preseed"}, `Invalid preseed: line 1: unknown key "bogus_key" at the top level`},
		{"config:\n  a: b\n c: d\n", []string{"init", "--preseed"}, "Invalid preseed YAML: line 2: did not find expected key"},
		{"", []string{"init", "--preseed", file}, file + `: invalid preseed: line 3: unknown key "bogus" in a network`},
		{"", []string{"init", "--preseed=" + file}, file + `: invalid preseed: line 3: unknown key "bogus" in a network`},
		{"", []string{"init", "--preseed", "/nonexistent.yaml"}, "Reading the preseed /nonexistent.yaml: no such file or directory"},
		{"", []string{"init", "--preseed", "a", "b"}, "Invalid number of arguments: init --preseed takes at most one FILE, got 2 arguments"},
		{"", []string{"init", "--preseed", "--profile", "x"}, "--preseed cannot be combined with --profile"},
		// A good preseed gets as far as connecting.
		{"config: {}\n", []string{"init", "--preseed"}, "Connecting to berthd"},
	}

	for _, c := range cases {
		stderr, code := runPreseedCLI(t, c.stdin, c.args...)
		lines := strings.Split(strings.TrimRight(stderr, "\n"), "\n")
		if code != 1 || !strings.HasPrefix(lines[0], "Error: "+c.want) {
			t.Errorf("berth %v: exit %d, stderr %q, want a first line starting %q", c.args, code, stderr, "Error: "+c.want)
		}
	}
}
