package main

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/client/internal/testdaemon"
)

// runClusterCLI runs `berth cluster ...` with the evacuate and restore commands in the
// cluster group (added to it when the group is not there yet).
func runClusterCLI(t *testing.T, socket, stdin string, args ...string) (string, error) {
	t.Helper()

	var out, errOut bytes.Buffer
	a := newApp(&out, &errOut)
	a.in = strings.NewReader(stdin)
	a.confDir = t.TempDir()
	root := newRootCmd(a)
	group, _, err := root.Find([]string{"cluster"})
	if err != nil || group == root {
		group = newGroup("cluster", "Manage cluster members")
		root.AddCommand(group)
	}

	if sub, _, err := group.Find([]string{"evacuate"}); err != nil || sub == group {
		group.AddCommand(clusterEvacuateCmds(a)...)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	root.SetArgs(append([]string{"--socket", socket, "cluster"}, args...))
	err = root.ExecuteContext(ctx)
	return out.String(), err
}

// TestClusterEvacuateCLI: the commands send the request the server checks (a server that
// is not clustered says so; a bad mode is named), and without --force a "no" sends
// nothing.
func TestClusterEvacuateCLI(t *testing.T) {
	s := fakeDaemon(t, testdaemon.Config{})

	_, err := runClusterCLI(t, s.Socket, "", "evacuate", "m1", "--force")
	if err == nil || !strings.Contains(err.Error(), "this server is not clustered") {
		t.Errorf("evacuate on a host that is not clustered: %v", err)
	}

	_, err = runClusterCLI(t, s.Socket, "", "evacuate", "m1", "--force", "--action-mode", "teleport")
	if err == nil || !strings.Contains(err.Error(), `unknown evacuation mode "teleport"`) {
		t.Errorf("evacuate with a bad mode: %v", err)
	}

	_, err = runClusterCLI(t, s.Socket, "", "restore", "m1", "--force")
	if err == nil || !strings.Contains(err.Error(), "this server is not clustered") {
		t.Errorf("restore on a host that is not clustered: %v", err)
	}

	out, err := runClusterCLI(t, s.Socket, "no\n", "evacuate", "m1", "--action", "teleport")
	if err != nil || !strings.Contains(out, `evacuate cluster member "m1"?`) {
		t.Errorf("answering no: %v, output %q (nothing must be sent)", err, out)
	}
}
