package db

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// TestGiveUpOnNoLeaderVerdict: in cluster mode the gateway's own "no leader" verdict
// (it already waited for a leader, or found no quorum) ends the retries at once, so a
// lost quorum answers within a second; the driver's failed search and a leader change
// are retried within clusterRetryWindow.
func TestGiveUpOnNoLeaderVerdict(t *testing.T) {
	db := &DB{cluster: true}
	now := time.Now()

	for _, c := range []struct {
		err  error
		want bool
	}{
		{errors.New("cluster database unavailable: no leader"), true},
		{fmt.Errorf("beginning transaction: %w", errors.New("cluster database unavailable: no leader (quorum lost: 1 of 3 voters reachable)")), true},
		{errors.New("no available dqlite leader server found"), false},
		{errors.New("leadership lost"), false},
	} {
		if got := db.giveUp(c.err, 1, now); got != c.want {
			t.Errorf("giveUp(%q) after one attempt = %v, want %v", c.err, got, c.want)
		}
	}
}
