package db

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"

	"github.com/berth-dev/berth/shared/api"
)

// TestUnavailable: errors of a database without a leader become a 503 saying so; the
// errors of a healthy database and a caller's own expired context stay what they are.
func TestUnavailable(t *testing.T) {
	live := context.Background()
	expired, cancel := context.WithCancel(context.Background())
	cancel()

	noLeader := errors.New("no available dqlite leader server found")
	gwNoLeader := errors.New("cluster database unavailable: no leader")
	for _, c := range []struct {
		name string
		ctx  context.Context
		err  error
		want string // "" unchanged
	}{
		{"no leader from the driver", live, fmt.Errorf("beginning transaction: %w", noLeader), "cluster database unavailable: beginning transaction: no available dqlite leader server found"},
		{"no leader from the gateway", live, gwNoLeader, "cluster database unavailable: no leader"},
		{"internal deadline", live, fmt.Errorf("querying: %w", context.DeadlineExceeded), "cluster database unavailable: querying: context deadline exceeded"},
		{"caller's context ended", expired, fmt.Errorf("querying: %w", context.DeadlineExceeded), ""},
		{"not found", live, notFound("instance", "c1"), ""},
		{"constraint", live, errors.New("UNIQUE constraint failed: instances.name"), ""},
	} {
		got := unavailable(c.ctx, c.err)
		if c.want == "" {
			if got != c.err {
				t.Errorf("%s: %v changed to %v", c.name, c.err, got)
			}

			continue
		}

		if api.StatusCodeOf(got) != http.StatusServiceUnavailable || got.Error() != c.want || !errors.Is(got, ErrUnavailable) {
			t.Errorf("%s: %v (status %d), want 503 %q", c.name, got, api.StatusCodeOf(got), c.want)
		}
	}
}

// TestTransactionUnavailable: a transaction whose database gave up answers 503 through
// both kinds of transaction.
func TestTransactionUnavailable(t *testing.T) {
	db := newTestDB(t)
	f := func(ctx context.Context, tx *Tx) error {
		return fmt.Errorf("reading instances: %w", errors.New("no available dqlite leader server found"))
	}

	for name, run := range map[string]func(context.Context, func(context.Context, *Tx) error) error{
		"write": db.Transaction, "read": db.ReadTransaction,
	} {
		err := run(context.Background(), f)
		if api.StatusCodeOf(err) != http.StatusServiceUnavailable {
			t.Errorf("%s transaction: %v, want a 503", name, err)
		}
	}
}
