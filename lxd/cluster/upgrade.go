package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sort"
	"strings"
	"time"

	"github.com/berth-dev/berth/shared/api"
)

// The rolling-upgrade gate (issue 16, item 5), as LXD does it. Every member records in
// its members row the schema version its binary brings (the number of schema updates) and
// its API extension count. At start, before any schema update is applied to the global
// database, a member compares itself with all others:
//
//   - all equal: go on (and the schema updates, if any are missing, are applied now; the
//     last member to upgrade is the one that finds everyone equal, so it applies them);
//   - some other member is older: wait, logging, polling, and apply nothing: the older
//     binaries could not read the new schema;
//   - some other member is newer: refuse to start; this binary is the old one.
//
// Recording and comparing happen in one transaction, and a refusing member rolls its
// record back, so an old binary started by mistake leaves nothing behind.

// MemberVersion is one member's versions as its row records them.
type MemberVersion struct {
	ID            int64
	Name          string
	SchemaVersion int
	APIExtensions int
}

func (v MemberVersion) String() string {
	return fmt.Sprintf("%s (schema %d, api extensions %d)", v.Name, v.SchemaVersion, v.APIExtensions)
}

// cmp orders two members' versions: -1 when a is behind b, 1 when ahead, 0 when equal,
// and an error when neither (one has the newer schema, the other more API extensions).
func (v MemberVersion) cmp(o MemberVersion) (int, error) {
	switch {
	case v.SchemaVersion == o.SchemaVersion && v.APIExtensions == o.APIExtensions:
		return 0, nil
	case v.SchemaVersion <= o.SchemaVersion && v.APIExtensions <= o.APIExtensions:
		return -1, nil
	case v.SchemaVersion >= o.SchemaVersion && v.APIExtensions >= o.APIExtensions:
		return 1, nil
	}

	return 0, fmt.Errorf("members %s and %s have inconsistent versions", v, o)
}

// ErrMembersBehind is the gate's answer while another member runs an older version: this
// member waits.
var ErrMembersBehind = errors.New("waiting for other cluster members to upgrade")

// CheckVersions decides for self, given every member's recorded versions (self's own row
// among them, already updated): nil to go on, ErrMembersBehind (wrapped, naming them) to
// wait, any other error to refuse to start.
func CheckVersions(self MemberVersion, all []MemberVersion) error {
	var behind []string
	for _, m := range all {
		if m.ID == self.ID {
			continue
		}

		c, err := self.cmp(m)
		if err != nil {
			return err
		}

		switch c {
		case -1:
			return fmt.Errorf("this member %s is older than cluster member %s: upgrade berth on this member first", self, m)
		case 1:
			behind = append(behind, m.String())
		}
	}

	if len(behind) > 0 {
		sort.Strings(behind)
		return fmt.Errorf("%w: %s", ErrMembersBehind, strings.Join(behind, ", "))
	}

	return nil
}

// VersionStore records this member's versions and reads everyone's (the daemon wraps
// db.ExchangeMemberVersions on the raw global database, before any schema update).
type VersionStore interface {
	// ExchangeVersions sets self's versions in its row and calls decide with every
	// member's, in one transaction that commits only when decide returns true (it
	// returns nil when decide returned false: the rollback is the answer).
	ExchangeVersions(ctx context.Context, self MemberVersion, decide func([]MemberVersion) bool) error
}

// UpgradeGate is the gate's configuration. Poll defaults to 5 s and After to the real
// clock.
type UpgradeGate struct {
	Store VersionStore
	Self  MemberVersion
	Log   *slog.Logger
	Poll  time.Duration
	After func(time.Duration) <-chan time.Time
}

// Wait returns nil once every member runs this member's versions, the refusal when a
// member is newer, or ctx's error. While others are behind it logs and polls; it applies
// nothing (its caller applies the schema updates after it returns nil). A transient
// database error while polling is logged and retried, not fatal: the leader may be
// restarting for its own upgrade.
func (g UpgradeGate) Wait(ctx context.Context) error {
	if g.Poll <= 0 {
		g.Poll = 5 * time.Second
	}

	if g.After == nil {
		g.After = time.After
	}

	if g.Log == nil {
		g.Log = slog.New(slog.DiscardHandler)
	}

	logged := ""
	for {
		var verdict error
		err := g.Store.ExchangeVersions(ctx, g.Self, func(all []MemberVersion) bool {
			verdict = CheckVersions(g.Self, all)
			return verdict == nil || errors.Is(verdict, ErrMembersBehind)
		})

		switch {
		case err != nil && ctx.Err() != nil:
			return ctx.Err()
		case api.StatusErrorCheck(err, http.StatusNotFound):
			// This member's row is gone: it was removed from the cluster.
			return fmt.Errorf("checking cluster members' versions: %w", err)
		case err != nil:
			g.Log.Warn("checking cluster members' versions", "err", err)
		case verdict == nil:
			if logged != "" {
				g.Log.Info("all cluster members upgraded", "schema", g.Self.SchemaVersion, "api_extensions", g.Self.APIExtensions)
			}

			return nil
		case errors.Is(verdict, ErrMembersBehind):
			if verdict.Error() != logged {
				logged = verdict.Error()
				g.Log.Warn("waiting for other cluster members to upgrade", "behind", strings.TrimPrefix(logged, ErrMembersBehind.Error()+": "))
			}
		default:
			return verdict
		}

		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-g.After(g.Poll):
		}
	}
}
