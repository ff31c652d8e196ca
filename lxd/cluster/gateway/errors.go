package gateway

import (
	"context"
	"database/sql/driver"
	"errors"
	"net"
	"strings"

	dqdriver "github.com/canonical/go-dqlite/driver"
)

// ErrNoLeader is returned when the cluster has no leader (quorum lost, or an election
// that did not finish within the wait): the database cannot be used until it has one.
var ErrNoLeader = errors.New("cluster database unavailable: no leader")

// Error is a SQLite error reported by the leader's database engine, with the SQLite
// (extended) result code. SQLiteCode lets lxd/db classify it without importing
// go-dqlite.
type Error struct {
	Code    int
	Message string
}

func (e *Error) Error() string { return e.Message }

// SQLiteCode returns the SQLite result code (extended when dqlite sent one).
func (e *Error) SQLiteCode() int { return e.Code }

// SQLite primary result codes that mean "try again".
const (
	sqliteBusy   = 5
	sqliteLocked = 6
)

// IsTransient reports whether err is worth retrying the whole transaction for: no
// leader, leadership lost or not leader, a dropped connection, busy/locked, or a
// checkpoint in progress.
func IsTransient(err error) bool {
	if err == nil {
		return false
	}

	if errors.Is(err, ErrNoLeader) || errors.Is(err, dqdriver.ErrNoAvailableLeader) || errors.Is(err, driver.ErrBadConn) {
		return true
	}

	var ge *Error
	if errors.As(err, &ge) && (ge.Code&0xff == sqliteBusy || ge.Code&0xff == sqliteLocked) {
		return true
	}

	var de dqdriver.Error
	if errors.As(err, &de) && (de.Code&0xff == sqliteBusy || de.Code&0xff == sqliteLocked) {
		return true
	}

	msg := err.Error()
	for _, s := range transientMessages {
		if strings.Contains(msg, s) {
			return true
		}
	}

	return false
}

var transientMessages = []string{
	"no available dqlite leader",
	"leadership lost",
	"not leader",
	"bad connection",
	"database is locked",
	"checkpoint in progress",
}

// isTimeout reports a deadline or network timeout: the connection it happened on may
// still have a request in flight and must not be reused.
func isTimeout(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return true
	}

	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}

	return strings.Contains(err.Error(), "i/o timeout")
}

// translate turns go-dqlite's error type into ours.
func translate(err error) error {
	var de dqdriver.Error
	if errors.As(err, &de) {
		return &Error{Code: de.Code, Message: de.Message}
	}

	return err
}
