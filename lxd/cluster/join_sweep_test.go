package cluster

import (
	"context"
	"testing"
	"time"

	"github.com/berth-dev/berth/lxd/db"
)

// A member accepted but never heartbeating (its join failed after Accept) is removed
// by the sweep, freeing its name; one that heartbeat is kept.
func TestUnjoinedMemberSwept(t *testing.T) {
	s := testMember(t)
	ctx := context.Background()
	joined := map[string]bool{"n2": false, "n3": true}
	accepted := time.Now()
	for _, name := range []string{"n2", "n3"} {
		tok, err := s.IssueToken(ctx, name, time.Now().Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}

		addr := "127.0.0.2:8443"
		if name == "n3" {
			addr = "127.0.0.3:8443"
		}

		out, err := accept(s, name, addr, tok.Secret)
		if err != nil {
			t.Fatal(err)
		}

		if joined[name] {
			err = s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
				return tx.SetMemberHeartbeat(ctx, out.MemberID, addr, ours.SchemaVersion, ours.APIExtensions, accepted.Add(5*time.Second))
			})
			if err != nil {
				t.Fatal(err)
			}
		}
	}

	for name, beat := range joined {
		removed, err := s.dropUnjoined(ctx, name, accepted)
		if err != nil || removed == beat {
			t.Errorf("%s (heartbeat %v): removed %v, %v", name, beat, removed, err)
		}
	}

	ms, err := s.Members(ctx)
	if err != nil {
		t.Fatal(err)
	}

	var names []string
	for _, m := range ms {
		names = append(names, m.Name)
	}

	if len(names) != 2 || names[0] != "n1" || names[1] != "n3" {
		t.Fatalf("members after the sweep: %v", names)
	}

	// The name is free again for a new token and join.
	tok, err := s.IssueToken(ctx, "n2", time.Now().Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}

	if _, err = accept(s, "n2", "127.0.0.2:8443", tok.Secret); err != nil {
		t.Fatalf("joining again after the sweep: %v", err)
	}
}
