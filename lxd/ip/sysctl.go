package ip

import (
	"fmt"
	"os"
	"strings"
)

func writeSysctl(path, value string) error {
	cur, err := os.ReadFile(path)
	if err == nil && strings.TrimSpace(string(cur)) == value {
		return nil
	}

	err = os.WriteFile(path, []byte(value), 0o644)
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}

	return nil
}
