package db

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/berth-dev/berth/shared/api"
)

// TestLostDatabase: in cluster mode, the errors that say the database could not be
// reached become a 503 saying "cluster database unavailable"; the errors of a healthy
// database, a caller's own expired context, and everything in file mode stay as they are.
func TestLostDatabase(t *testing.T) {
	cluster := &DB{cluster: true}
	file := &DB{}
	live := context.Background()
	expired, cancel := context.WithCancel(context.Background())
	cancel()

	noLeader := errors.New("no available dqlite leader server found")
	for _, c := range []struct {
		name string
		db   *DB
		ctx  context.Context
		err  error
		want bool // a 503
	}{
		{"no leader", cluster, live, fmt.Errorf("beginning transaction: %w", noLeader), true},
		{"deadline inside the layer", cluster, live, fmt.Errorf("querying: %w", context.DeadlineExceeded), true},
		{"network", cluster, live, errors.New("failed to establish network connection: dial tcp: i/o timeout"), true},
		{"caller's context ended", cluster, expired, fmt.Errorf("querying: %w", context.DeadlineExceeded), false},
		{"not found", cluster, live, notFound("instance", "c1"), false},
		{"constraint", cluster, live, errors.New("UNIQUE constraint failed: instances.name"), false},
		{"file mode", file, live, fmt.Errorf("querying: %w", context.DeadlineExceeded), false},
	} {
		got := c.db.lostDatabase(c.ctx, c.err)
		if !c.want {
			if got != c.err {
				t.Errorf("%s: %v changed to %v", c.name, c.err, got)
			}

			continue
		}

		if api.StatusCodeOf(got) != http.StatusServiceUnavailable || !errors.Is(got, ErrUnavailable) || !errors.Is(got, c.err) {
			t.Errorf("%s: %v (status %d), want a 503 wrapping it", c.name, got, api.StatusCodeOf(got))
		}
	}
}

// TestTransactionLostDatabase: a cluster transaction whose database gave up with a
// non-transient error that still means "unreachable" answers 503 through both kinds of
// transaction.
func TestTransactionLostDatabase(t *testing.T) {
	db := newTestDB(t)
	c := *db
	c.cluster = true
	f := func(ctx context.Context, tx *Tx) error {
		return fmt.Errorf("reading instances: %w", errors.New("failed to establish network connection: 10.251.0.1:8444"))
	}

	for name, run := range map[string]func(context.Context, func(context.Context, *Tx) error) error{
		"write": c.Transaction, "read": c.ReadTransaction,
	} {
		err := run(context.Background(), f)
		if api.StatusCodeOf(err) != http.StatusServiceUnavailable {
			t.Errorf("%s transaction: %v, want a 503", name, err)
		}
	}
}
