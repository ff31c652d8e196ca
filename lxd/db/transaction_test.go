package db

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/mattn/go-sqlite3"
)

func TestTransactionRollsBackOnError(t *testing.T) {
	db := newTestDB(t)
	boom := errors.New("boom")

	err := db.Transaction(context.Background(), func(ctx context.Context, tx *Tx) error {
		err := tx.UpdateNodeConfig(ctx, map[string]string{"k": "v"}, nil)
		if err != nil {
			return err
		}

		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Transaction = %v, want boom", err)
	}

	read(t, db, func(ctx context.Context, tx *Tx) error {
		config, err := tx.GetNodeConfig(ctx)
		if err != nil {
			return err
		}

		if len(config) != 0 {
			t.Errorf("rolled-back write is visible: %v", config)
		}

		return nil
	})
}

func TestTransactionRetriesBusy(t *testing.T) {
	db := newTestDB(t)
	calls := 0

	err := db.Transaction(context.Background(), func(ctx context.Context, tx *Tx) error {
		calls++
		if calls < 3 {
			return fmt.Errorf("wrapped: %w", sqlite3.Error{Code: sqlite3.ErrBusy})
		}

		return nil
	})
	if err != nil || calls != 3 {
		t.Fatalf("Transaction = %v after %d calls, want nil after 3", err, calls)
	}
}

func TestTransactionGivesUpAfterMaxAttempts(t *testing.T) {
	db := newTestDB(t)
	calls := 0

	err := db.Transaction(context.Background(), func(ctx context.Context, tx *Tx) error {
		calls++
		return sqlite3.Error{Code: sqlite3.ErrLocked}
	})
	if !isBusy(err) || calls != maxAttempts {
		t.Fatalf("Transaction = %v after %d calls, want a locked error after %d", err, calls, maxAttempts)
	}
}

func TestTransactionDoesNotRetryOtherErrors(t *testing.T) {
	db := newTestDB(t)
	calls := 0

	err := db.Transaction(context.Background(), func(ctx context.Context, tx *Tx) error {
		calls++
		return errors.New("plain")
	})
	if err == nil || calls != 1 {
		t.Fatalf("Transaction = %v after %d calls, want an error after 1", err, calls)
	}
}

// TestTransactionRetriesRealLock holds the write lock from a second connection,
// as another process would, with a short busy timeout so SQLite gives up quickly.
func TestTransactionRetriesRealLock(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()

	db, err := open(ctx, dir, 20*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = db.Close() })

	other, err := sql.Open("sqlite3", filepath.Join(dir, "database", "berth.db")+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}

	t.Cleanup(func() { _ = other.Close() })

	lock, err := other.BeginTx(ctx, nil)
	if err != nil {
		t.Fatalf("taking the write lock: %v", err)
	}

	t.Cleanup(func() { _ = lock.Rollback() })

	setK := func(ctx context.Context, tx *Tx) error {
		return tx.UpdateNodeConfig(ctx, map[string]string{"k": "v"}, nil)
	}

	// One attempt alone fails: the lock is real and outlasts the busy timeout.
	err = run(ctx, db.write, setK)
	if !isBusy(err) {
		t.Fatalf("single attempt under lock = %v, want SQLITE_BUSY", err)
	}

	go func() {
		time.Sleep(200 * time.Millisecond)
		_ = lock.Rollback()
	}()

	start := time.Now()
	err = db.Transaction(ctx, setK)
	if err != nil {
		t.Fatalf("Transaction while locked: %v", err)
	}

	if time.Since(start) < 150*time.Millisecond {
		t.Fatalf("Transaction finished in %v, before the lock was released", time.Since(start))
	}
	read(t, db, func(ctx context.Context, tx *Tx) error {
		config, err := tx.GetNodeConfig(ctx)
		if err != nil {
			return err
		}

		if config["k"] != "v" {
			t.Errorf("write after lock release lost: %v", config)
		}

		return nil
	})
}

func TestNestedTransactionRefused(t *testing.T) {
	db := newTestDB(t)

	err := db.Transaction(context.Background(), func(ctx context.Context, tx *Tx) error {
		return db.Transaction(ctx, func(ctx context.Context, tx *Tx) error { return nil })
	})
	if !errors.Is(err, ErrNestedTransaction) {
		t.Fatalf("nested Transaction = %v, want ErrNestedTransaction", err)
	}
}

func TestConcurrentWriters(t *testing.T) {
	db := newTestDB(t)
	ctx := context.Background()

	const writers = 16
	const perWriter = 10

	var wg sync.WaitGroup
	errs := make(chan error, writers*perWriter*2)
	for w := range writers {
		wg.Go(func() {
			for i := range perWriter {
				name := fmt.Sprintf("c-%d-%d", w, i)
				err := db.Transaction(ctx, func(ctx context.Context, tx *Tx) error {
					_, err := tx.CreateInstance(ctx, Instance{Name: name, Type: "container", Profiles: []string{"default"}})
					return err
				})
				if err != nil {
					errs <- err
				}

				// Readers run beside the writers on the read pool.
				err = db.ReadTransaction(ctx, func(ctx context.Context, tx *Tx) error {
					_, err := tx.GetInstances(ctx)
					return err
				})
				if err != nil {
					errs <- err
				}
			}
		})
	}

	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}

	read(t, db, func(ctx context.Context, tx *Tx) error {
		insts, err := tx.GetInstances(ctx)
		if err != nil {
			return err
		}

		if len(insts) != writers*perWriter {
			t.Errorf("%d instances, want %d", len(insts), writers*perWriter)
		}

		return nil
	})
}
