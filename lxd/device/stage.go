package device

import (
	"fmt"
	"os"
)

// stageDirMode, with the instance's root as owner, keeps every host user but root out of
// an instance's staged devices (its idmapped disk mounts, device nodes, proxy files), as
// the storage pool does for the instance's tree.
const stageDirMode = 0o100

// makeStageDir creates the instance's staging directory, or restricts one an older
// berthd made 0711, before devices are staged in it.
func makeStageDir(in *Instance) error {
	dir := in.stageDir()

	err := os.MkdirAll(dir, 0o700)
	if err == nil {
		err = os.Lchown(dir, int(in.IDs.HostUID), int(in.IDs.HostGID))
	}

	if err == nil {
		err = os.Chmod(dir, stageDirMode)
	}

	if err != nil {
		return fmt.Errorf("preparing the device staging directory: %w", err)
	}

	return nil
}
