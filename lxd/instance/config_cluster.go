package instance

import "fmt"

// cluster.evacuate (LXD's): what evacuating the instance's cluster member does to it.
func init() {
	keyValidators["cluster.evacuate"] = func(v string) error {
		switch v {
		case "auto", "migrate", "live-migrate", "stop":
			return nil
		}

		return fmt.Errorf("%q is not one of auto, migrate, live-migrate, stop", v)
	}
}
