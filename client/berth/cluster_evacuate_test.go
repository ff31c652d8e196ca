package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/client/internal/testdaemon"
)

// runClusterCLI runs `berth cluster ARGS...` with stdin.
func runClusterCLI(t *testing.T, socket, stdin string, args ...string) (string, error) {
	t.Helper()

	var out, errOut bytes.Buffer
	a := newApp(&out, &errOut)
	a.in = strings.NewReader(stdin)
	a.confDir = t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	code := run(ctx, append([]string{"--socket", socket, "cluster"}, args...), a)
	if code != 0 {
		return out.String(), errors.New(errOut.String())
	}

	return out.String(), nil
}

// TestClusterEvacuateCLI: the commands send the request and print the server's refusal
// (a server that is not clustered says so), and without --force a "no" sends nothing.
// The request bodies and the work are tested on the handler (lxd/cluster_evacuate_test.go).
func TestClusterEvacuateCLI(t *testing.T) {
	s := fakeDaemon(t, testdaemon.Config{})

	_, err := runClusterCLI(t, s.Socket, "", "evacuate", "m1", "--force")
	if err == nil || !strings.Contains(err.Error(), "Error: This server is not clustered") {
		t.Errorf("evacuate on a host that is not clustered: %v", err)
	}

	_, err = runClusterCLI(t, s.Socket, "", "restore", "m1", "--force")
	if err == nil || !strings.Contains(err.Error(), "Error: This server is not clustered") {
		t.Errorf("restore on a host that is not clustered: %v", err)
	}

	out, err := runClusterCLI(t, s.Socket, "no\n", "evacuate", "m1", "--action", "teleport")
	if err != nil || !strings.Contains(out, `evacuate cluster member "m1"?`) {
		t.Errorf("answering no: %v, output %q (nothing must be sent)", err, out)
	}
}
