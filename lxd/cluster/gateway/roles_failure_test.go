package gateway

import (
	"context"
	"testing"
	"time"
)

// TestRolesThreeVotersThenStandBy: with LXD's defaults (3 voters, 2 stand-bys) a cluster
// of three has three voters, and a fourth member is made a stand-by by the roles
// adjustment, not a fourth voter; a fifth too, and a sixth stays a spare.
func TestRolesThreeVotersThenStandBy(t *testing.T) {
	gws := startCluster(t, 3) // waits for 3 voters

	roles := func() map[string]int {
		t.Helper()
		ms, err := gws[0].Members(context.Background())
		if err != nil {
			t.Fatal(err)
		}

		out := map[string]int{}
		for _, m := range ms {
			out[m.Role]++
		}

		return out
	}

	if r := roles(); r["voter"] != 3 || len(r) != 1 {
		t.Fatalf("roles of a 3-member cluster: %v, want 3 voters", r)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for n := 4; n <= 6; n++ {
		g, err := Join(ctx, testConfig(t, gws[0].cfg.Cert), []string{gws[0].Address()})
		if err != nil {
			t.Fatalf("joining member %d: %v", n, err)
		}

		gws = append(gws, g)
		t.Cleanup(func() { closeAll([]*Gateway{g}) })
	}

	want := map[string]int{"voter": 3, "standby": 2, "spare": 1}
	deadline := time.Now().Add(20 * time.Second)
	for {
		r := roles()
		if r["voter"] == want["voter"] && r["standby"] == want["standby"] && r["spare"] == want["spare"] {
			break
		}

		if r["voter"] > 3 {
			t.Fatalf("more than 3 voters: %v", r)
		}

		if time.Now().After(deadline) {
			t.Fatalf("roles of a 6-member cluster after 20 s: %v, want %v", r, want)
		}

		time.Sleep(100 * time.Millisecond)
	}
}
