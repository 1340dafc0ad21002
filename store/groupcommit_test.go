package store

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func openRaw(t *testing.T) *bolt.DB {
	t.Helper()
	db, err := bolt.Open(filepath.Join(t.TempDir(), "g.db"), 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucket([]byte("b")); return err }); err != nil {
		t.Fatal(err)
	}
	return db
}

func TestGroupCommitOneFailureFailsOnlyItsCaller(t *testing.T) {
	db := openRaw(t)
	g := newGroupCommit(db)
	defer g.close()
	boom := errors.New("boom")
	var wg sync.WaitGroup
	errs := make([]error, 200)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = g.do(func(tx *bolt.Tx) error {
				if i%50 == 7 {
					return boom
				}
				if i%50 == 8 {
					panic("a bug")
				}
				return tx.Bucket([]byte("b")).Put([]byte(fmt.Sprint(i)), []byte("v"))
			})
		}()
	}
	wg.Wait()
	n := 0
	_ = db.View(func(tx *bolt.Tx) error { n = tx.Bucket([]byte("b")).Stats().KeyN; return nil })
	for i, err := range errs {
		switch {
		case i%50 == 7 && !errors.Is(err, boom), i%50 == 8 && err == nil, i%50 != 7 && i%50 != 8 && err != nil:
			t.Errorf("write %d: %v", i, err)
		}
	}
	if n != 200-8 {
		t.Fatalf("%d keys written, want %d", n, 200-8)
	}
}

func TestGroupCommitAfterCloseFails(t *testing.T) {
	g := newGroupCommit(openRaw(t))
	g.close()
	g.close() // twice is fine
	if err := g.do(func(*bolt.Tx) error { return nil }); err == nil {
		t.Fatal("a write after close succeeded")
	}
}
