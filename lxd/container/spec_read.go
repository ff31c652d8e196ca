package container

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// ReadSpec returns the spec the container of runDir was started with (the
// daemon's own file): what its init got, which its exec'd commands must
// get too, whatever the config says since.
func ReadSpec(runDir string) (Spec, error) {
	var s Spec

	b, err := os.ReadFile(filepath.Join(runDir, specFile))
	if err != nil {
		return s, fmt.Errorf("reading spec: %w", err)
	}

	err = json.Unmarshal(b, &s)
	if err != nil {
		return s, fmt.Errorf("parsing spec: %w", err)
	}

	return s, nil
}
