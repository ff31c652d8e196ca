package instance

import (
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/lxd/db"
)

// deletingPool records the instances deleted from it.
type deletingPool struct {
	namedPool
	deleted []string
}

func (p *deletingPool) DeleteInstance(name string) error {
	p.deleted = append(p.deleted, name)
	return nil
}

func (p *deletingPool) PruneBackupImages() {}

// TestSettleMove: after a crash during a pool move, the storage on the pool its row does
// not name goes (the copy on the target while the row still names the source, the
// source once the row names the target), never the one the row names; the marker goes.
func TestSettleMove(t *testing.T) {
	for _, c := range []struct {
		name, rowPool, gone string
	}{
		{"crash before the row moved", "p1", "p2"},
		{"crash after the row moved", "p2", "p1"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := t.TempDir()
			p1, p2 := &deletingPool{namedPool: namedPool{name: "p1"}}, &deletingPool{namedPool: namedPool{name: "p2"}}
			ru := &Runner{dir: dir, pools: poolSet{pools: fakePools{"p1": p1, "p2": p2}, def: "p1"}, log: slog.New(slog.NewTextHandler(io.Discard, nil))}
			instDir := filepath.Join(dir, "instances", "c1")
			if err := os.MkdirAll(instDir, 0o700); err != nil {
				t.Fatal(err)
			}

			if _, err := markMove(instDir, "p1", "p2"); err != nil {
				t.Fatal(err)
			}

			inst := &db.Instance{Name: "c1", Devices: map[string]map[string]string{"root": {"type": "disk", "path": "/", "pool": c.rowPool}}}
			ru.settleMove(inst, nil)

			byName := map[string]*deletingPool{"p1": p1, "p2": p2}
			if got := byName[c.gone].deleted; len(got) != 1 || got[0] != "c1" {
				t.Errorf("deleted from %s: %v, want [c1]", c.gone, got)
			}

			if got := byName[c.rowPool].deleted; len(got) != 0 {
				t.Errorf("deleted from the row's pool %s: %v", c.rowPool, got)
			}

			if _, err := os.Lstat(filepath.Join(instDir, moveMarkerName)); err == nil {
				t.Error("the move marker stayed")
			}
		})
	}
}
