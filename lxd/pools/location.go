package pools

import (
	"context"
	"net/http"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/api"
)

// Location returns the directory a loaded pool keeps its data in, and its driver: 404 for
// no such pool, 503 for one whose driver did not load. Custom volumes (lxd/volumes) live
// there.
func (s *Service) Location(ctx context.Context, name string) (dir, driver string, err error) {
	var row *db.StoragePool
	err = s.db.ReadTransaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		var err error
		row, err = tx.GetStoragePool(ctx, name)
		return err
	})
	if err != nil {
		return "", "", err
	}

	s.lmu.RLock()
	_, ok := s.loaded[name]
	s.lmu.RUnlock()
	if !ok {
		return "", "", api.StatusErrorf(http.StatusServiceUnavailable, "storage pool %q is unavailable", name)
	}

	return s.dirOf(row), row.Driver, nil
}
