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

// MinOfflineThreshold is LXD's lowest value of the key (DefaultOfflineThreshold, in
// members.go, its default).
const MinOfflineThreshold = 10 * time.Second

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

	d, err := parseSeconds(v)
	if err != nil {
		d, err = time.ParseDuration(v)
	}

	if err != nil || d < 100*time.Millisecond || d > time.Hour {
		return 0
	}

	return d
}

// defaultOfflineThreshold is the threshold when the key is unset: the test override when
// one is set, else LXD's 20 s.
func defaultOfflineThreshold() time.Duration {
	if t := testThreshold(); t > 0 {
		return t
	}

	return DefaultOfflineThreshold
}

// parseSeconds reads whole seconds, LXD's form of the key.
func parseSeconds(v string) (time.Duration, error) {
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n <= 0 || n > 24*3600 {
		return 0, fmt.Errorf("%q is not a number of seconds between 1 and 86400", v)
	}

	return time.Duration(n) * time.Second, nil
}

// ValidOfflineThreshold checks a value of cluster.offline_threshold: whole seconds, at
// least 10 (LXD's floor), or at least the test override when one is set.
func ValidOfflineThreshold(v string) error {
	d, err := parseSeconds(v)
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

// IsOnline reports whether a member whose last heartbeat is at heartbeat counts as online
// at now: within the threshold. A member that never beat is offline; a heartbeat ahead of
// now (clock skew between members) counts as fresh.
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
