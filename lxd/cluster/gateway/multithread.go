package gateway

import (
	"fmt"

	dqlite "github.com/canonical/go-dqlite"
)

// go-dqlite's own init switches the process-wide SQLite to single-thread mode, which
// is unsafe for the daemon's other SQLite users (mattn/go-sqlite3 shares the same
// system library). Packages initialise after their imports, so this undoes it before
// any database can have been opened.
func init() {
	err := dqlite.ConfigMultiThread()
	if err != nil {
		panic(fmt.Sprintf("gateway: setting SQLite multi-thread mode: %v", err))
	}
}

// ConfigMultiThread puts SQLite in multi-thread mode. The daemon calls it first thing
// in main (package init already did it; this fails loudly if anything opened SQLite
// before, which would make the setting ineffective).
func ConfigMultiThread() error {
	err := dqlite.ConfigMultiThread()
	if err != nil {
		return fmt.Errorf("setting SQLite multi-thread mode: %w", err)
	}

	return nil
}
