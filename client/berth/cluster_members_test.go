package main

import (
	"context"
	"strings"
	"testing"

	"github.com/berth-dev/berth/client"
	"github.com/berth-dev/berth/client/internal/testdaemon"
)

var fakeMembers = []testdaemon.Member{
	{Name: "m1", Address: "10.251.0.1:8443"},
	{Name: "m2", Address: "10.251.0.2:8443", Offline: true},
	{Name: "m3", Address: "10.251.0.3:8443", Evacuated: true},
}

func TestClusterListShow(t *testing.T) {
	s := fakeDaemon(t, testdaemon.Config{Cluster: fakeMembers, Instances: withStatus("Running", "c1")})

	out, errOut, code := runCLI(t, s.Socket, "cluster", "list")
	if code != 0 {
		t.Fatalf("cluster list: %d %s", code, errOut)
	}

	for _, want := range []string{"| NAME |", " URL ", " ROLES ", " STATE ", "| m1   | https://10.251.0.1:8443 | database",
		"database-leader", "ONLINE", "OFFLINE", "EVACUATED", "Fully operational", "No heartbeat for"} {
		if !strings.Contains(out, want) {
			t.Errorf("cluster list lacks %q:\n%s", want, out)
		}
	}

	out, errOut, code = runCLI(t, s.Socket, "cluster", "list", "-f", "csv")
	if code != 0 || !strings.HasPrefix(out, "m1,https://10.251.0.1:8443,") {
		t.Errorf("cluster list -f csv: %d %s %q", code, errOut, out)
	}

	out, errOut, code = runCLI(t, s.Socket, "cluster", "show", "m2")
	if code != 0 || !strings.Contains(out, "server_name: m2") || !strings.Contains(out, "status: Offline") {
		t.Errorf("cluster show m2: %d %s\n%s", code, errOut, out)
	}

	_, errOut, code = runCLI(t, s.Socket, "cluster", "show", "nope")
	checkOneError(t, errOut, code, `Cluster member "nope" not found`)

	// berth list takes the LOCATION column on a cluster, told by the instances' location.
	before := len(s.Requests())
	out, errOut, code = runCLI(t, s.Socket, "list")
	if code != 0 || !strings.Contains(out, "LOCATION") || !strings.Contains(out, "| m1 ") {
		t.Errorf("list on a cluster: %d %s\n%s", code, errOut, out)
	}

	if reqs := paths(s.Requests()[before:]); len(reqs) != 1 {
		t.Errorf("list sent %d requests, want 1: %v", len(reqs), reqs)
	}

	out, _, _ = runCLI(t, s.Socket, "list", "-c", "ns")
	if strings.Contains(out, "LOCATION") {
		t.Errorf("list -c ns shows LOCATION:\n%s", out)
	}
}

func TestListNoLocationUnclustered(t *testing.T) {
	s := fakeDaemon(t, testdaemon.Config{Instances: withStatus("Running", "c1")})
	before := len(s.Requests())
	out, errOut, code := runCLI(t, s.Socket, "list")
	if code != 0 || strings.Contains(out, "LOCATION") || !strings.Contains(out, "c1") {
		t.Errorf("list unclustered: %d %s\n%s", code, errOut, out)
	}

	// The instances' location ("none") tells the table it is not on a cluster: one
	// request, no GET /1.0 after it.
	if reqs := paths(s.Requests()[before:]); len(reqs) != 1 {
		t.Errorf("list sent %d requests, want 1: %v", len(reqs), reqs)
	}

	// An empty list has no location to tell: the server is asked.
	empty := fakeDaemon(t, testdaemon.Config{Cluster: fakeMembers})
	out, errOut, code = runCLI(t, empty.Socket, "list")
	if code != 0 || !strings.Contains(out, "LOCATION") || len(empty.Requests()) != 2 {
		t.Errorf("empty list on a cluster: %d %s %v\n%s", code, errOut, paths(empty.Requests()), out)
	}

	out, errOut, code = runCLI(t, s.Socket, "cluster", "list")
	if code != 0 || !strings.Contains(out, "| none |") {
		t.Errorf("cluster list unclustered: %d %s\n%s", code, errOut, out)
	}
}

func TestClusterRenameEditRemove(t *testing.T) {
	s := fakeDaemon(t, testdaemon.Config{Cluster: fakeMembers})
	c, err := client.Connect(s.Socket)
	if err != nil {
		t.Fatal(err)
	}

	ctx := context.Background()

	out, errOut, code := runCLI(t, s.Socket, "cluster", "rename", "m3", "m4")
	if code != 0 || out != "Member m3 renamed to m4\n" {
		t.Fatalf("cluster rename: %d %q %s", code, out, errOut)
	}

	_, errOut, code = runCLI(t, s.Socket, "cluster", "rename", "m4", "m1")
	checkOneError(t, errOut, code, `Cluster member "m1" already exists`)

	m, _, err := c.GetClusterMember(ctx, "m4")
	if err != nil || m.URL != "https://10.251.0.3:8443" || m.Status != "Evacuated" {
		t.Fatalf("after rename: %+v, %v", m, err)
	}

	put := m.Writable()
	put.Description = "rack 4"
	put.FailureDomain = "az-d"
	err = c.UpdateClusterMember(ctx, "m4", put, "")
	if err != nil {
		t.Fatal(err)
	}

	m, _, _ = c.GetClusterMember(ctx, "m4")
	if m.Description != "rack 4" || m.FailureDomain != "az-d" {
		t.Errorf("after UpdateClusterMember: %+v", m)
	}

	out, errOut, code = runCLI(t, s.Socket, "cluster", "remove", "m4")
	if code != 0 || out != "Member m4 removed\n" {
		t.Fatalf("cluster remove: %d %q %s", code, out, errOut)
	}

	_, errOut, code = runCLI(t, s.Socket, "cluster", "remove", "m1")
	checkOneError(t, errOut, code, `Cluster member "m1" is this server: remove it through another member`)

	ms, err := c.GetClusterMembers(ctx)
	if err != nil || len(ms) != 2 || ms[0].ServerName != "m1" || ms[1].ServerName != "m2" {
		t.Errorf("members after remove: %+v, %v", ms, err)
	}

	err = c.DeleteClusterMember(ctx, "m2", true)
	if err != nil {
		t.Errorf("forced removal: %v", err)
	}
}

// paths lists requests as "METHOD path" for test messages.
func paths(reqs []testdaemon.Request) []string {
	out := make([]string, 0, len(reqs))
	for _, r := range reqs {
		out = append(out, r.Method+" "+r.Path)
	}

	return out
}
