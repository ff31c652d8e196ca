package main

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/instance"
	"github.com/berth-dev/berth/lxd/trust"
	"github.com/berth-dev/berth/shared/api"
	"github.com/berth-dev/berth/shared/project"
)

// moveInFake is the instances side of an arrival that never gets its trees.
type moveInFake struct{ migrationService }

func (moveInFake) MoveOut(context.Context, string, func(context.Context, *instance.Trees) error) error {
	return nil
}

func (moveInFake) CreateFromTrees(context.Context, instance.Incoming) error { return nil }

// The websockets of an instance arriving from another member (POST
// /internal/cluster/move) take only a member: their secrets are in the operation's
// metadata, which a restricted client of the instance's project may read (GET
// /1.0/operations, its events), and whoever connects first plays the source: it would
// feed the target the instance's trees and snapshots of its choosing, and the real
// source's copy would then be deleted as moved.
func TestClusterMoveInWebsocketsMembersOnly(t *testing.T) {
	d := newFakeClusterDaemon(t, fakeMember{Name: "m1", Address: "10.251.0.1:8443"}, fakeMember{Name: "m2", Address: "10.251.0.2:8443"})
	d.migrations = moveInFake{}
	ctx := context.Background()
	m2, err := d.memberSvc().Member(ctx, "m2")
	if err != nil {
		t.Fatal(err)
	}

	err = d.projects.Create(ctx, "tp", "", map[string]string{"restricted": "true", "features.images": "false", "features.profiles": "false"})
	if err != nil {
		t.Fatal(err)
	}

	key, err := project.KeyFor("tp", "c1")
	if err != nil {
		t.Fatal(err)
	}

	err = d.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		_, err := tx.CreateInstance(ctx, db.Instance{Name: key, Type: "container", Architecture: "x86_64", MemberID: m2.ID})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	call := fakeAPI(t, d)
	code, env, _ := call("POST", "/internal/cluster/move", fmt.Sprintf(`{"name":%q,"new_name":%q,"from":%d}`, key, key, m2.ID))
	if code >= 400 {
		t.Fatalf("POST /internal/cluster/move: %d %s", code, env.Error)
	}

	var op api.Operation
	err = json.Unmarshal(env.Metadata, &op)
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() {
		if o, err := d.ops.Get(op.ID); err == nil {
			_ = o.Cancel()
		}
	})
	tenant := trust.Caller{Via: trust.ViaTLS, UID: -1, PID: -1, Fingerprint: "ab", Trusted: true,
		Cert: trust.Entry{Type: api.CertificateTypeClient, Restricted: true, Projects: []string{"tp"}}}
	member := trust.Caller{Via: trust.ViaTLS, UID: -1, PID: -1, Fingerprint: "cd", Trusted: true, Member: true}
	connect := func(c trust.Caller, stream string) error {
		secret, _ := op.Metadata[stream].(string)
		r := httptest.NewRequest(http.MethodGet, "/1.0/operations/"+op.ID+"/websocket?secret="+secret, nil)
		r = r.WithContext(context.WithValue(r.Context(), callerKey{}, c))
		return d.ops.ConnectWebsocket(op.ID, r, httptest.NewRecorder())
	}

	deadline := time.Now().Add(5 * time.Second)
	for _, stream := range migrationStreams {
		err := connect(tenant, stream)
		for api.StatusErrorCheck(err, http.StatusBadRequest) && strings.Contains(err.Error(), "not running") && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
			err = connect(tenant, stream)
		}

		if !api.StatusErrorCheck(err, http.StatusForbidden) || !strings.Contains(err.Error(), "member") {
			t.Errorf("a restricted client with the %s secret: %v, want a 403 for members only", stream, err)
		}

		// Positive control: a member gets past the check (to the websocket upgrade,
		// which this recorder cannot do).
		err = connect(member, stream)
		if api.StatusErrorCheck(err, http.StatusForbidden) {
			t.Errorf("a member with the %s secret: %v", stream, err)
		}
	}
}
