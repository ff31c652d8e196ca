package cluster

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berth-dev/berth/shared/api"
)

// fakeVersions is a members table with a transaction: a rolled-back exchange leaves the
// rows as they were.
type fakeVersions struct {
	mu    sync.Mutex
	rows  []MemberVersion
	calls int
	fail  error
	failN int // fail this many calls (0: every call while fail is set)
}

func (f *fakeVersions) ExchangeVersions(_ context.Context, self MemberVersion, decide func([]MemberVersion) bool) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.fail != nil && (f.failN == 0 || f.calls <= f.failN) {
		return f.fail
	}

	next := append([]MemberVersion(nil), f.rows...)
	for i := range next {
		if next[i].ID == self.ID {
			next[i].SchemaVersion, next[i].APIExtensions = self.SchemaVersion, self.APIExtensions
		}
	}

	if decide(next) {
		f.rows = next
	}

	return nil
}

func (f *fakeVersions) set(id int64, schema, apiExt int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.rows {
		if f.rows[i].ID == id {
			f.rows[i].SchemaVersion, f.rows[i].APIExtensions = schema, apiExt
		}
	}
}

func (f *fakeVersions) get(id int64) MemberVersion {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.rows {
		if r.ID == id {
			return r
		}
	}

	return MemberVersion{}
}

func threeMembers(schema, apiExt int) *fakeVersions {
	return &fakeVersions{rows: []MemberVersion{
		{ID: 1, Name: "m1", SchemaVersion: schema, APIExtensions: apiExt},
		{ID: 2, Name: "m2", SchemaVersion: schema, APIExtensions: apiExt},
		{ID: 3, Name: "m3", SchemaVersion: schema, APIExtensions: apiExt},
	}}
}

func TestCheckVersions(t *testing.T) {
	self := MemberVersion{ID: 1, Name: "m1", SchemaVersion: 12, APIExtensions: 50}
	for _, c := range []struct {
		name   string
		others []MemberVersion
		want   string // "" go on, "wait", or part of the refusal
	}{
		{"alone", nil, ""},
		{"all equal", []MemberVersion{{ID: 2, Name: "m2", SchemaVersion: 12, APIExtensions: 50}}, ""},
		{"one older schema", []MemberVersion{{ID: 2, Name: "m2", SchemaVersion: 11, APIExtensions: 50}}, "wait"},
		{"one fewer extensions", []MemberVersion{{ID: 2, Name: "m2", SchemaVersion: 12, APIExtensions: 49}}, "wait"},
		{"one newer schema", []MemberVersion{{ID: 2, Name: "m2", SchemaVersion: 13, APIExtensions: 50}}, "older than cluster member m2"},
		{"one more extensions", []MemberVersion{{ID: 2, Name: "m2", SchemaVersion: 12, APIExtensions: 51}}, "older than cluster member m2"},
		{"newer and older", []MemberVersion{{ID: 2, Name: "m2", SchemaVersion: 11, APIExtensions: 50}, {ID: 3, Name: "m3", SchemaVersion: 13, APIExtensions: 50}}, "older than cluster member m3"},
		{"inconsistent", []MemberVersion{{ID: 2, Name: "m2", SchemaVersion: 13, APIExtensions: 40}}, "inconsistent versions"},
	} {
		err := CheckVersions(self, append([]MemberVersion{self}, c.others...))
		switch c.want {
		case "":
			if err != nil {
				t.Errorf("%s: %v, want go on", c.name, err)
			}
		case "wait":
			if !errors.Is(err, ErrMembersBehind) || !strings.Contains(err.Error(), "m2") {
				t.Errorf("%s: %v, want to wait naming m2", c.name, err)
			}
		default:
			if err == nil || errors.Is(err, ErrMembersBehind) || !strings.Contains(err.Error(), c.want) {
				t.Errorf("%s: %v, want a refusal containing %q", c.name, err, c.want)
			}
		}
	}
}

// TestUpgradeGateRolling walks a rolling upgrade of three members from schema 11 to 12:
// the first two upgraded wait (recording their new version), the last finds everyone
// equal and goes on; the two waiting ones then go on at their next poll.
func TestUpgradeGateRolling(t *testing.T) {
	table := threeMembers(11, 50)
	type result struct {
		id  int64
		err error
	}

	results := make(chan result, 3)
	polls := map[int64]chan time.Time{1: make(chan time.Time), 2: make(chan time.Time)}
	waiting := make(chan int64, 16)
	gate := func(id int64) UpgradeGate {
		return UpgradeGate{Store: table, Self: MemberVersion{ID: id, Name: "m", SchemaVersion: 12, APIExtensions: 50},
			After: func(time.Duration) <-chan time.Time { waiting <- id; return polls[id] }}
	}

	ctx := context.Background()
	for _, id := range []int64{1, 2} {
		go func() { results <- result{id, gate(id).Wait(ctx)} }()
		if got := <-waiting; got != id {
			t.Fatalf("member %d should wait, member %d did", id, got)
		}

		if v := table.get(id); v.SchemaVersion != 12 {
			t.Fatalf("waiting member %d recorded schema %d, want 12", id, v.SchemaVersion)
		}
	}

	select {
	case r := <-results:
		t.Fatalf("member %d went on while member 3 was behind: %v", r.id, r.err)
	default:
	}

	// The last member: everyone else is ahead or equal... equal: it goes on at once.
	err := gate(3).Wait(ctx)
	if err != nil {
		t.Fatalf("last member to upgrade: %v", err)
	}

	for _, id := range []int64{1, 2} {
		polls[id] <- time.Now()
		r := <-results
		if r.err != nil {
			t.Fatalf("member %d after everyone upgraded: %v", r.id, r.err)
		}
	}
}

// TestUpgradeGateRefusesOlder: a member started with an older binary than the others
// refuses, and its row keeps the version it had (the exchange is rolled back).
func TestUpgradeGateRefusesOlder(t *testing.T) {
	table := threeMembers(12, 50)
	table.set(3, 12, 50)
	g := UpgradeGate{Store: table, Self: MemberVersion{ID: 3, Name: "m3", SchemaVersion: 11, APIExtensions: 50},
		After: func(time.Duration) <-chan time.Time { t.Fatal("an older member must not wait"); return nil }}

	err := g.Wait(context.Background())
	if err == nil || !strings.Contains(err.Error(), "upgrade berth on this member") {
		t.Fatalf("older member: %v, want a refusal", err)
	}

	if v := table.get(3); v.SchemaVersion != 12 {
		t.Fatalf("refusing member's row changed to schema %d", v.SchemaVersion)
	}
}

// TestUpgradeGateRetriesDatabaseErrors: a database error while checking (the leader is
// restarting for its own upgrade) is retried, not fatal; a cancelled start returns.
func TestUpgradeGateRetriesDatabaseErrors(t *testing.T) {
	table := threeMembers(12, 50)
	table.fail = errors.New("no available dqlite leader server found")
	table.failN = 2
	poll := make(chan time.Time)
	g := UpgradeGate{Store: table, Self: MemberVersion{ID: 1, Name: "m1", SchemaVersion: 12, APIExtensions: 50},
		After: func(time.Duration) <-chan time.Time { return poll }}

	done := make(chan error, 1)
	go func() { done <- g.Wait(context.Background()) }()
	poll <- time.Now()
	poll <- time.Now()
	err := <-done
	if err != nil || table.calls != 3 {
		t.Fatalf("after the database came back: %v (%d exchanges, want 3)", err, table.calls)
	}

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	table.fail, table.failN = errors.New("down"), 0
	err = g.Wait(ctx)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled: %v", err)
	}
}

// TestUpgradeGateRemovedMember: a member whose row is gone (removed from the cluster)
// does not wait forever for itself.
func TestUpgradeGateRemovedMember(t *testing.T) {
	table := threeMembers(12, 50)
	table.fail = api.StatusErrorf(http.StatusNotFound, "cluster member \"#7\" not found")
	g := UpgradeGate{Store: table, Self: MemberVersion{ID: 7, Name: "m7", SchemaVersion: 12, APIExtensions: 50},
		After: func(time.Duration) <-chan time.Time { t.Fatal("a removed member must not wait"); return nil }}

	err := g.Wait(context.Background())
	if !api.StatusErrorCheck(err, http.StatusNotFound) {
		t.Fatalf("removed member: %v, want the 404", err)
	}
}
