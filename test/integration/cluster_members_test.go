package integration

import (
	"context"
	"encoding/json"
	"net/http"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/shared/api"
)

// One enabled member through the members API and the CLI: listed online as the database
// leader with its URL; description and failure domain edited; renamed (its instance's
// location follows, GET /1.0 names it); it cannot remove itself; the CLI's list shows
// LOCATION.
func TestClusterMembersSingle(t *testing.T) {
	parallel(t)
	d := startDaemon(t)
	addr := d.listenHTTPS()
	d.berth("init", "debian/12", "c1")

	// The CLI waits for the enable operation; the daemon re-execs once it succeeded.
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	enable := exec.CommandContext(ctx, berthBin, "cluster", "enable", "m1")
	enable.Env = append(enable.Environ(), "BERTH_DIR="+d.dir)
	out, err := enable.CombinedOutput()
	if err != nil {
		t.Fatalf("cluster enable: %v %s\n%s", err, out, tail(d.log.String(), 40))
	}

	d.waitClustered("m1")

	out = []byte(d.berth("cluster", "list", "-f", "csv"))
	fields := strings.Split(strings.TrimSpace(string(out)), ",")
	if len(fields) < 8 || fields[0] != "m1" || fields[1] != "https://"+addr || !strings.Contains(fields[2], "database") ||
		fields[6] != "ONLINE" {
		t.Fatalf("cluster list: %q", out)
	}

	code, env := d.raw("GET", "/1.0/cluster/members/m1", nil)
	var m api.ClusterMember
	_ = json.Unmarshal(env.Metadata, &m)
	if code != http.StatusOK || !m.Database || m.Status != "Online" || m.URL != "https://"+addr {
		t.Fatalf("GET member m1: %d %+v %s", code, m, env.Error)
	}

	cmd := exec.Command(berthBin, "cluster", "edit", "m1")
	cmd.Env = append(cmd.Environ(), "BERTH_DIR="+d.dir)
	cmd.Stdin = strings.NewReader("description: rack 1\nfailure_domain: az-a\n")
	edit, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("cluster edit: %v %s", err, edit)
	}

	show := d.berth("cluster", "show", "m1")
	if !strings.Contains(show, "description: rack 1") || !strings.Contains(show, "failure_domain: az-a") {
		t.Errorf("cluster show after edit:\n%s", show)
	}

	rm, err := d.berthErr("cluster", "remove", "m1")
	if err == nil || !strings.Contains(rm, "this server") {
		t.Errorf("removing the only member itself: %v %s", err, rm)
	}

	d.berth("cluster", "rename", "m1", "n1")
	inst, _, err := d.c.GetInstance(t.Context(), "c1")
	if err != nil || inst.Location != "n1" {
		t.Errorf("c1's location after the rename = %+v, %v; want n1", inst, err)
	}

	srv, _, err := d.c.GetServer(t.Context())
	if err != nil || srv.Environment.ServerName != "n1" {
		t.Errorf("server name after renaming this member: %+v, %v", srv.Environment.ServerName, err)
	}

	list := d.berth("list")
	if !strings.Contains(list, "LOCATION") || !strings.Contains(list, "n1") {
		t.Errorf("berth list on a cluster:\n%s", list)
	}
}
