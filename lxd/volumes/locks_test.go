package volumes

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/berth-dev/berth/lxd/db"
	"github.com/berth-dev/berth/shared/api"
)

// within runs fn and reports whether it returned within d (it keeps running otherwise;
// the returned channel closes when it does).
func within(d time.Duration, fn func()) (bool, chan struct{}) {
	done := make(chan struct{})
	go func() {
		fn()
		close(done)
	}()

	select {
	case <-done:
		return true, done
	case <-time.After(d):
		return false, done
	}
}

// slowCopies makes the copies of a volume's tree wait until release is called, and
// reports on started when one begins.
func slowCopies(t *testing.T) (started chan string, release func()) {
	t.Helper()
	started = make(chan string, 4)
	gate := make(chan struct{})
	var once sync.Once
	release = func() { once.Do(func() { close(gate) }) }
	orig := copyDir
	copyDir = func(ctx context.Context, src, dst string, readOnly bool) error {
		started <- filepath.Base(dst)
		<-gate
		return orig(ctx, src, dst, readOnly)
	}

	t.Cleanup(func() {
		release()
		copyDir = orig
	})

	return started, release
}

// TestVolumeLockPerVolume: a change holds only its own volume. While a long copy into
// "copy" from "src" runs, another volume is created, snapshotted and deleted at once; the
// source cannot be deleted (its delete waits and then finds it unused and goes), and a
// second create of the copy's name waits and then gets 409, as does any create of a
// name another create holds.
func TestVolumeLockPerVolume(t *testing.T) {
	s, poolDir := newService(t)
	ctx := context.Background()
	if err := s.Create(ctx, "p", api.StorageVolumesPost{Name: "src"}); err != nil {
		t.Fatal(err)
	}

	if err := os.WriteFile(filepath.Join(volumeDir(poolDir, "src"), "data"), []byte("kept"), 0o644); err != nil {
		t.Fatal(err)
	}

	started, release := slowCopies(t)
	copyErr := make(chan error, 1)
	go func() {
		copyErr <- s.Create(ctx, "p", api.StorageVolumesPost{Name: "copy", Source: api.StorageVolumeSource{Type: "copy", Pool: "p", Name: "src"}})
	}()

	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the copy did not start")
	}

	// Another volume is free meanwhile: with one service-wide lock this waited for the copy.
	ok, _ := within(5*time.Second, func() {
		err := s.Create(ctx, "p", api.StorageVolumesPost{Name: "other"})
		if err == nil {
			_, err = s.CreateSnapshot(ctx, "p", "other", api.StorageVolumeSnapshotsPost{Name: "s0"})
		}

		if err == nil {
			err = s.Delete(ctx, "p", "other")
		}

		if err != nil {
			t.Errorf("changing another volume during a copy: %v", err)
		}
	})
	if !ok {
		t.Fatal("creating another volume waited for a copy it does not touch")
	}

	// The copy's source and target are held.
	var delErr, dupErr error
	delDone, waitDel := within(300*time.Millisecond, func() { delErr = s.Delete(ctx, "p", "src") })
	dupDone, waitDup := within(300*time.Millisecond, func() {
		dupErr = s.Create(ctx, "p", api.StorageVolumesPost{Name: "copy"})
	})

	if delDone {
		t.Fatalf("the copy's source was deleted under it (%v)", delErr)
	}

	if dupDone {
		t.Fatalf("a second create of the copy's name ran during the copy (%v)", dupErr)
	}

	release()
	if err := <-copyErr; err != nil {
		t.Fatalf("the copy: %v", err)
	}

	<-waitDel
	<-waitDup
	if delErr != nil {
		t.Errorf("deleting the source after the copy: %v", delErr)
	}

	if !api.StatusErrorCheck(dupErr, http.StatusConflict) {
		t.Errorf("the second create of one name got %v, want 409", dupErr)
	}

	data, err := os.ReadFile(filepath.Join(volumeDir(poolDir, "copy"), "data"))
	if err != nil || string(data) != "kept" {
		t.Errorf("the copy holds %q, %v", data, err)
	}
}

// TestVolumeCreateSameNameRace: of many concurrent creates of one name, one makes it and
// every other gets 409; nothing else is left in the pool.
func TestVolumeCreateSameNameRace(t *testing.T) {
	s, poolDir := newService(t)
	ctx := context.Background()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = s.Create(ctx, "p", api.StorageVolumesPost{Name: "v"})
		}()
	}

	wg.Wait()
	made := 0
	for _, err := range errs {
		switch {
		case err == nil:
			made++
		case !api.StatusErrorCheck(err, http.StatusConflict):
			t.Errorf("a losing create got %v, want 409", err)
		}
	}

	if made != 1 {
		t.Fatalf("%d creates of one name succeeded", made)
	}

	ents, _ := os.ReadDir(filepath.Join(poolDir, customDir))
	if len(ents) != 1 {
		t.Errorf("the pool holds %d volume directories, want 1", len(ents))
	}
}

// TestVolumeLocksNoDeadlock: two changes that each hold one volume and need the other
// (copies a->b and b->a at once) never wait on each other: locks are taken in one order.
func TestVolumeLocksNoDeadlock(t *testing.T) {
	var l volLocks
	a, b := key{"p", "a"}, key{"p", "b"}
	ok, _ := within(20*time.Second, func() {
		var wg sync.WaitGroup
		for i := range 2000 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if i%2 == 0 {
					l.take([]key{a}, []key{b})()
				} else {
					l.take([]key{b}, []key{a})()
				}
			}()
		}

		wg.Wait()
	})
	if !ok {
		t.Fatal("crossed copies deadlocked")
	}

	if len(l.held) != 0 {
		t.Errorf("%d lock entries left after every holder released", len(l.held))
	}

	// One key named twice (a rename to its own name) is taken once.
	ok, _ = within(5*time.Second, func() { l.take([]key{a, a}, []key{a})() })
	if !ok {
		t.Fatal("a change naming one volume twice waits on itself")
	}
}

// TestOpenRefusedDuringRestore: while a volume is being restored a start's mount of it
// (Open) is refused with 409, and a restore is refused while an instance using the
// volume is busy (busy consulted, not the attachment alone).
func TestOpenRefusedDuringRestore(t *testing.T) {
	s, _ := newService(t)
	ctx := context.Background()
	if err := s.Create(ctx, "p", api.StorageVolumesPost{Name: "v"}); err != nil {
		t.Fatal(err)
	}

	done, err := s.beginRestore(ctx, "p", "v")
	if err != nil {
		t.Fatal(err)
	}

	_, err = s.Open(ctx, "c1", "p", "v")
	if !api.StatusErrorCheck(err, http.StatusConflict) {
		t.Errorf("Open during a restore: %v, want 409", err)
	}

	done()
	fd, err := s.Open(ctx, "c1", "p", "v")
	if err != nil {
		t.Fatalf("Open after the restore: %v", err)
	}

	_ = unix.Close(fd)
}

// TestRestoreUnderStoppedInstance: a volume attached to an instance is restored while
// the instance is neither running nor starting, and refused with 400 naming it while it
// is (as LXD refuses only under running instances).
func TestRestoreUnderStoppedInstance(t *testing.T) {
	s, poolDir := newService(t)
	ctx := context.Background()
	if err := s.Create(ctx, "p", api.StorageVolumesPost{Name: "v"}); err != nil {
		t.Fatal(err)
	}

	err := s.db.Transaction(ctx, func(ctx context.Context, tx *db.Tx) error {
		_, err := tx.CreateInstance(ctx, db.Instance{Name: "c1", Type: api.InstanceTypeContainer, Architecture: "x86_64",
			Config:  map[string]string{},
			Devices: map[string]map[string]string{"data": {"type": "disk", "pool": "p", "source": "v", "path": "/mnt"}}})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	marker := filepath.Join(volumeDir(poolDir, "v"), "marker")
	write := func(v string) {
		t.Helper()
		if err := os.WriteFile(marker, []byte(v), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	write("one")
	if _, err := s.CreateSnapshot(ctx, "p", "v", api.StorageVolumeSnapshotsPost{Name: "s0"}); err != nil {
		t.Fatal(err)
	}

	write("two")
	busy := true
	s.SetInstanceBusy(func(inst string) bool { return inst == "c1" && busy })
	err = s.Restore(ctx, "p", "v", "s0")
	if !api.StatusErrorCheck(err, http.StatusBadRequest) || !strings.Contains(err.Error(), "/1.0/instances/c1") {
		t.Fatalf("restore under a running instance: %v, want 400 naming it", err)
	}

	if data, _ := os.ReadFile(marker); string(data) != "two" {
		t.Fatalf("a refused restore changed the volume: %q", data)
	}

	busy = false
	err = s.Restore(ctx, "p", "v", "s0")
	if err != nil {
		t.Fatalf("restore under a stopped instance: %v", err)
	}

	if data, _ := os.ReadFile(marker); string(data) != "one" {
		t.Errorf("after the restore the volume holds %q, want one", data)
	}
}
