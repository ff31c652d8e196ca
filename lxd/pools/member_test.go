package pools

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/berth-dev/berth/lxd/db"
)

// A pool made by member 1 records member 1's directory as its source: on another
// member it must resolve under that member's own state directory (and be created
// there), never to member 1's path; an admin's source stays as given. A host that is not
// clustered keeps what was recorded.
func TestMemberOwnPoolDir(t *testing.T) {
	other := filepath.Join(t.TempDir(), "member1")
	mine := t.TempDir()
	s := &Service{stateDir: mine, clustered: true}
	row := db.StoragePool{Name: "fast", Driver: "dir", Config: map[string]string{"source": filepath.Join(other, "storage-pools", "fast")}}
	if got, want := s.dirOf(&row), filepath.Join(mine, "storage-pools", "fast"); got != want {
		t.Fatalf("clustered: %s, want %s", got, want)
	}

	err := s.ensureMemberLocal(&row)
	if err != nil {
		t.Fatal(err)
	}

	fi, err := os.Stat(filepath.Join(mine, "storage-pools", "fast"))
	if err != nil || !fi.IsDir() {
		t.Fatalf("this member's pool directory was not made: %v", err)
	}

	_, err = os.Stat(other)
	if !os.IsNotExist(err) {
		t.Fatalf("member 1's path was touched: %v", err)
	}

	admin := db.StoragePool{Name: "fast", Driver: "dir", Config: map[string]string{"source": "/srv/data"}}
	if got := s.dirOf(&admin); got != "/srv/data" {
		t.Fatalf("admin source: %s", got)
	}

	single := &Service{stateDir: mine}
	if got := single.dirOf(&row); got != row.Config["source"] {
		t.Fatalf("unclustered: %s", got)
	}

	loop := db.StoragePool{Name: "b", Driver: "btrfs", Config: map[string]string{"source": filepath.Join(other, "disks", "b.img")}}
	if !s.isLoop(&loop) || single.isLoop(&loop) {
		t.Fatal("a daemon-made loop file is a member's own only when clustered")
	}
}
