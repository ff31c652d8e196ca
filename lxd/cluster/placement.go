package cluster

import (
	"net/http"
	"strings"

	"github.com/berth-dev/berth/shared/api"
)

// Place picks the member a new instance goes to when the request names none: among
// the members online and not evacuated, the one with the fewest instances (counts by
// member id, db.Tx.GetMemberInstanceCounts); a tie goes to the lowest id, so placement
// is deterministic. None eligible is a 503 saying why each member was passed over.
func Place(members []Member, counts map[int64]int) (Member, error) {
	var best *Member
	var passed []string
	for i := range members {
		m := &members[i]
		switch {
		case !m.Online:
			passed = append(passed, m.Name+" is offline")
			continue
		case m.Evacuated:
			passed = append(passed, m.Name+" is evacuated")
			continue
		}

		if best == nil || counts[m.ID] < counts[best.ID] || (counts[m.ID] == counts[best.ID] && m.ID < best.ID) {
			best = m
		}
	}

	if best == nil {
		if len(passed) == 0 {
			return Member{}, api.StatusErrorf(http.StatusServiceUnavailable, "no cluster member can take a new instance: there are no members")
		}

		return Member{}, api.StatusErrorf(http.StatusServiceUnavailable, "no cluster member can take a new instance: %s",
			strings.Join(passed, ", "))
	}

	return *best, nil
}

// Target checks a member named by ?target=: it must exist (404 naming it), be online
// and not evacuated (503/400 naming it). LXD refuses an evacuated target the same way.
func Target(members []Member, name string) (Member, error) {
	for _, m := range members {
		if m.Name != name {
			continue
		}

		if !m.Online {
			return Member{}, api.StatusErrorf(http.StatusServiceUnavailable, "cluster member %q is offline", name)
		}

		if m.Evacuated {
			return Member{}, api.StatusErrorf(http.StatusBadRequest, "cluster member %q is evacuated", name)
		}

		return m, nil
	}

	return Member{}, api.StatusErrorf(http.StatusNotFound, "cluster member %q not found", name)
}
