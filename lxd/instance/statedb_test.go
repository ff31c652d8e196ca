package instance

import (
	"context"
	"testing"

	"github.com/berth-dev/berth/lxd/db"
)

// stateDB opens the database of a fresh state directory (closed at cleanup) and returns
// both.
func stateDB(tb testing.TB) (*db.DB, string) {
	tb.Helper()
	dir := tb.TempDir()
	d, err := db.Open(context.Background(), dir)
	if err != nil {
		tb.Fatal(err)
	}

	tb.Cleanup(func() { _ = d.Close() })

	return d, dir
}
