package cluster

import (
	"fmt"
	"os"
	"strconv"
	"time"
)

// OfflineThresholdKey is the server configuration key (LXD's, in whole seconds) after
// which a member whose heartbeat is older counts as offline.
const OfflineThresholdKey = "cluster.offline_threshold"

// DefaultOfflineThreshold and MinOfflineThreshold are LXD's default and lowest value.
const (
	DefaultOfflineThreshold = 20 * time.Second
	MinOfflineThreshold     = 10 * time.Second
)

// TestOfflineThresholdEnv lowers the threshold for tests only: when berthd runs with it
// set (a Go duration such as "2s", or whole seconds), that value is both the default
// threshold and the lowest one the key accepts. A cluster test then sees a killed member
// go OFFLINE in seconds instead of 20; production never sets it, so LXD's floor of 10 s
// holds there.
const TestOfflineThresholdEnv = "BERTH_TEST_OFFLINE_THRESHOLD"

// testThreshold is the test override from the environment, 0 when unset or invalid.
func testThreshold() time.Duration {
	v := os.Getenv(TestOfflineThresholdEnv)
	if v == "" {
		return 0
	}

	d, err := parseThreshold(v)
	if err != nil || d < 100*time.Millisecond {
		return 0
	}

	return d
}

// parseThreshold reads whole seconds (LXD's form) or a Go duration.
func parseThreshold(v string) (time.Duration, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err == nil {
		if n <= 0 || n > 24*3600 {
			return 0, fmt.Errorf("%q is not a number of seconds between 1 and 86400", v)
		}

		return time.Duration(n) * time.Second, nil
	}

	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 || d > 24*time.Hour {
		return 0, fmt.Errorf("%q is not a number of seconds", v)
	}

	return d, nil
}

// ValidOfflineThreshold checks a value of cluster.offline_threshold: whole seconds, at
// least 10 (LXD's floor), or at least the test override when one is set.
func ValidOfflineThreshold(v string) error {
	d, err := parseThreshold(v)
	if err != nil {
		return err
	}

	floor := MinOfflineThreshold
	if t := testThreshold(); t > 0 && t < floor {
		floor = t
	}

	if d < floor {
		return fmt.Errorf("%s is below the minimum of %s", d, floor)
	}

	return nil
}

// OfflineThreshold is the threshold a value of the key means: the default (or the test
// override) when empty or invalid. Readers computing Online and the heartbeat writer both
// use it, so they agree.
func OfflineThreshold(v string) time.Duration {
	def := DefaultOfflineThreshold
	if t := testThreshold(); t > 0 {
		def = t
	}

	if v == "" || ValidOfflineThreshold(v) != nil {
		return def
	}

	d, _ := parseThreshold(v)
	return d
}

// IsOnline reports whether a member whose last heartbeat is at heartbeat counts as online
// at now. A member that never beat is offline; a heartbeat ahead of now (clock skew
// between members) counts as fresh.
func IsOnline(heartbeat, now time.Time, threshold time.Duration) bool {
	if heartbeat.IsZero() {
		return false
	}

	return now.Sub(heartbeat) <= threshold
}

// HeartbeatInterval is how often a member writes its heartbeat: a quarter of the
// threshold, so three beats in a row may fail (a leader election, a slow disk) before
// the others see it offline.
func HeartbeatInterval(threshold time.Duration) time.Duration {
	return max(threshold/4, 25*time.Millisecond)
}
