package pools

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/lxd/storage"
)

// Pools in a cluster (issue 16). A pool's definition is shared by every member, but the
// directory (or loop file) the daemon made for it lives under each member's own state
// directory: the source recorded is the creating member's path. On a member, a source
// shaped like a daemon-made one (<state>/storage-pools/<name>, <state>/disks/<name>.img)
// means "this member's own", and a member that has not made it yet makes it at start.

// Option configures Start.
type Option func(*Service)

// Clustered makes Start resolve daemon-made pool sources under this member's state
// directory, and create them when missing.
func Clustered() Option { return func(s *Service) { s.clustered = true } }

// madeByADaemon reports whether src has the shape of a pool directory a daemon made.
func madeByADaemon(src, name string) bool {
	return filepath.Base(src) == name && filepath.Base(filepath.Dir(src)) == "storage-pools"
}

// loopByADaemon reports whether src has the shape of a loop file a daemon made.
func loopByADaemon(src, name string) bool {
	return filepath.Base(src) == name+".img" && filepath.Base(filepath.Dir(src)) == "disks"
}

// ensureMemberLocal creates this member's directory or loop file of a pool another
// member created.
func (s *Service) ensureMemberLocal(row *db.StoragePool) error {
	if !s.clustered {
		return nil
	}

	if s.isLoop(row) {
		_, err := os.Stat(s.loopFile(row.Name))
		if err == nil {
			return nil
		}

		size, err := loopSize(row.Config["size"])
		if err != nil {
			return err
		}

		err = os.MkdirAll(s.ownDir(row.Name), 0o711)
		if err != nil {
			return err
		}

		return storage.CreateBtrfsFile(context.Background(), s.loopFile(row.Name), size)
	}

	if s.dirOf(row) != s.ownDir(row.Name) {
		return nil
	}

	err := os.MkdirAll(s.ownDir(row.Name), 0o711)
	if err != nil {
		return fmt.Errorf("creating this member's directory of pool %q: %w", row.Name, err)
	}

	return nil
}
