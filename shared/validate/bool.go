package validate

import (
	"fmt"
	"strings"
)

// Bool checks a boolean config value in LXD's spellings (true/false, 1/0, yes/no, on/off,
// any case); "" is unset and accepted.
func Bool(v string) error {
	switch strings.ToLower(v) {
	case "", "true", "false", "1", "0", "yes", "no", "on", "off":
		return nil
	}

	return fmt.Errorf("%q is not a boolean", v)
}

// IsTrue interprets a boolean config value; "" and anything Bool refuses is false.
func IsTrue(v string) bool {
	switch strings.ToLower(v) {
	case "true", "1", "yes", "on":
		return true
	}

	return false
}
