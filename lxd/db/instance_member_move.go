package db

import (
	"context"
	"fmt"
	"net/http"

	"github.com/berth-dev/berth/shared/api"
)

const instanceMemberMove = `UPDATE instances SET member_id = ? WHERE name = ? AND member_id = ?`

// MoveInstanceToMember hands instance name over from member from to member to (a move
// between cluster members), renamed to newName when it differs, its config changed by
// set and unset (the keys that are each host's own). It is one row that changes, in the
// caller's transaction: the instance is never listed twice nor missing. A 409 if the
// instance is no longer on from (moved, or deleted and made again, meanwhile).
func (tx *Tx) MoveInstanceToMember(ctx context.Context, name, newName string, from, to int64, set map[string]string, unset []string) error {
	res, err := tx.tx.ExecContext(ctx, instanceMemberMove, to, name, from)
	if err != nil {
		return fmt.Errorf("moving instance %q to member %d: %w", name, to, err)
	}

	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("moving instance %q to member %d: %w", name, to, err)
	}

	if n != 1 {
		return api.StatusErrorf(http.StatusConflict, "instance %q is no longer on the cluster member it was moved from", name)
	}

	err = tx.UpdateInstanceConfig(ctx, name, set, unset)
	if err != nil {
		return err
	}

	if newName != "" && newName != name {
		return tx.RenameInstance(ctx, name, newName)
	}

	return nil
}
