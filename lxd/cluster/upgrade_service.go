package cluster

import (
	"context"
	"database/sql"
	"time"

	"github.com/berth-dev/berth/lxd/db"
)

// upgradePoll is how often a member waiting for the others to upgrade checks again.
const upgradePoll = 2 * time.Second

// exchangeTimeout bounds one check: the database may be between leaders.
const exchangeTimeout = 5 * time.Second

// waitUpgrade is the rolling-upgrade gate (upgrade.go) at start, on the raw global
// database, before its schema updates are applied: it returns once every member runs
// this binary's versions, or refuses this one when another member is newer. While it
// waits, this member's dqlite node keeps running, so the cluster keeps its quorum.
func (s *Service) waitUpgrade(ctx context.Context, sqlDB *sql.DB) error {
	s.mu.RLock()
	self := MemberVersion{ID: s.self.MemberID, Name: s.self.Name, SchemaVersion: s.levels.SchemaVersion,
		APIExtensions: s.levels.APIExtensions}
	s.mu.RUnlock()
	if self.SchemaVersion == 0 {
		return nil // no levels given (a test's service)
	}

	return UpgradeGate{Store: sqlVersionStore{sqlDB}, Self: self, Log: s.log, Poll: upgradePoll}.Wait(ctx)
}

// sqlVersionStore is VersionStore over the raw global database.
type sqlVersionStore struct{ db *sql.DB }

func (v sqlVersionStore) ExchangeVersions(ctx context.Context, self MemberVersion, decide func([]MemberVersion) bool) error {
	ctx, cancel := context.WithTimeout(ctx, exchangeTimeout)
	defer cancel()

	return db.ExchangeMemberVersions(ctx, v.db, self.ID, self.SchemaVersion, self.APIExtensions, func(rows []db.MemberVersion) bool {
		all := make([]MemberVersion, 0, len(rows))
		for _, r := range rows {
			all = append(all, MemberVersion{ID: r.ID, Name: r.Name, SchemaVersion: r.SchemaVersion, APIExtensions: r.APIExtensions})
		}

		return decide(all)
	})
}
