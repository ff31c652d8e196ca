package main

import (
	"strings"

	"github.com/berth-dev/berth/shared/api"
)

// Join tokens listed from any member (issue 16). The secret of a join token lives only
// in the token operation of the member that issued it: the cluster database keeps its
// SHA-256 (cluster/tokens.go), so that whoever reads the database (a backup, a member's
// disk) gets no live join secret. A member lists the other members' operations too
// (operationsOfMembers, as LXD 5.0 does), so the issuer's operation, with its secret,
// is listed through every member to an administrator, as in LXD, where a token is the
// issuing member's operation. The stand-in a member makes from the database row (no
// secret) is only shown when no member answered with the operation itself: the issuer
// is unreachable, or restarted (its operations, and so the secret, are gone; the token
// still works for whoever holds it, and can be revoked).

// dropHeldStandIns removes from a recursive operations list the stand-ins of tokens
// whose issuing operation is listed too.
func dropHeldStandIns(objs map[string][]api.Operation) {
	held := map[string]bool{}
	for _, ops := range objs {
		for _, op := range ops {
			if op.Class != api.OperationClassToken || strings.HasPrefix(op.ID, standInPrefix) {
				continue
			}

			if h, ok := op.Metadata[metaSecretHash].(string); ok && len(h) >= 32 {
				held[standInPrefix+h[:32]] = true
			}
		}
	}

	if len(held) == 0 {
		return
	}

	for status, ops := range objs {
		kept := ops[:0]
		for _, op := range ops {
			if !held[op.ID] {
				kept = append(kept, op)
			}
		}

		objs[status] = kept
	}
}
