package store

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// The buckets of a bbolt store.
var (
	bucketClients = []byte("clients") // client id → JSON Client
	bucketTokens  = []byte("tokens")  // TokenKey → tokenRecord
	// expiry: big-endian expiry (unix ns) ‖ TokenKey → nothing; lets the
	// sweeper find expired tokens without reading every record.
	bucketExpiry = []byte("expiry")
	// client_families: uvarint(len(client id)) ‖ client id ‖ FamilyID →
	// nothing; lets a client be revoked with all its tokens.
	bucketClientFamilies = []byte("client_families")

	allBuckets = [][]byte{bucketClients, bucketTokens, bucketExpiry, bucketClientFamilies, bucketCodes}
)

// ErrLocked is returned by OpenBolt when another process holds the file.
var ErrLocked = errors.New("store: database file is locked by another process")

// Bolt is the embedded bbolt store. One process opens a file once; the
// Caddy module shares it across config reloads.
type Bolt struct {
	db     *bolt.DB
	writes *groupCommit
	cache  *tokenCache
}

// wtx is a write transaction that notes the tokens it deletes, so that
// the cache can forget them once the transaction has committed.
type wtx struct {
	*bolt.Tx
	deleted []TokenKey
}

// update runs fn in a write transaction of its own, then evicts what it
// deleted.
func (b *Bolt) update(fn func(w *wtx) error) error {
	var deleted []TokenKey
	err := b.db.Update(func(tx *bolt.Tx) error {
		w := &wtx{Tx: tx}
		err := fn(w)
		deleted = w.deleted
		return err
	})
	if err == nil {
		b.cache.evict(deleted)
	}
	return err
}

// OpenBolt opens (creating if needed, with mode 0600) the bbolt file at
// path. It waits at most lockTimeout for the file lock.
func OpenBolt(path string, lockTimeout time.Duration) (*Bolt, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return nil, fmt.Errorf("creating folder for %s: %w", path, err)
	}
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: lockTimeout})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("%w: %s (is another Caddy running? use 'caddy reload' to change its config)", ErrLocked, path)
	}
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	err = db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("initializing %s: %w", path, err)
	}
	return &Bolt{db: db, writes: newGroupCommit(db), cache: newTokenCache(tokenCacheSize)}, nil
}

// Close closes the file, after the writes already queued.
func (b *Bolt) Close() error {
	b.writes.close()
	return b.db.Close()
}

// Path returns the file's path.
func (b *Bolt) Path() string { return b.db.Path() }

// Drop removes every client and token.
func (b *Bolt) Drop(ctx context.Context) error {
	defer b.cache.clear()
	return b.db.Update(func(tx *bolt.Tx) error {
		for _, name := range allBuckets {
			if err := tx.DeleteBucket(name); err != nil && !errors.Is(err, bolterrors.ErrBucketNotFound) {
				return err
			}
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		return nil
	})
}

// CreateClient implements Store.
func (b *Bolt) CreateClient(ctx context.Context, c Client) error {
	v, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return b.db.Update(func(tx *bolt.Tx) error {
		clients := tx.Bucket(bucketClients)
		if clients.Get([]byte(c.ID)) != nil {
			return ErrClientExists
		}
		return clients.Put([]byte(c.ID), v)
	})
}

// Client implements Store.
func (b *Bolt) Client(ctx context.Context, id string) (Client, error) {
	var c Client
	err := b.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketClients).Get([]byte(id))
		if v == nil {
			return ErrNotFound
		}
		return json.Unmarshal(v, &c)
	})
	return c, err
}

// Clients implements Store.
func (b *Bolt) Clients(ctx context.Context) ([]Client, error) {
	var list []Client
	err := b.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketClients).ForEach(func(_, v []byte) error {
			var c Client
			if err := json.Unmarshal(v, &c); err != nil {
				return err
			}
			list = append(list, c)
			return nil
		})
	})
	return list, err
}

// RevokeClient implements Store.
func (b *Bolt) RevokeClient(ctx context.Context, id string) error {
	return b.update(func(tx *wtx) error {
		clients := tx.Bucket(bucketClients)
		if clients.Get([]byte(id)) == nil {
			return ErrNotFound
		}
		if err := clients.Delete([]byte(id)); err != nil {
			return err
		}
		prefix := clientFamilyPrefix(id)
		var families []FamilyID
		c := tx.Bucket(bucketClientFamilies).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			families = append(families, FamilyID(k[len(prefix):]))
		}
		for _, f := range families {
			if err := revokeFamily(tx, f); err != nil {
				return err
			}
			// Also the entry of a family that had no token left.
			if err := tx.Bucket(bucketClientFamilies).Delete(clientFamilyKey(id, f)); err != nil {
				return err
			}
		}
		return nil
	})
}

// Issue implements Store.
func (b *Bolt) Issue(ctx context.Context, g Grant, now time.Time) (TokenPair, error) {
	f := NewFamilyID()
	pair, records := newPair(f, g, now)
	err := b.batch(func(tx *wtx) (error, error) {
		// Checked here, not before: a client revoked while its user was
		// being checked must not get a token.
		if !g.StaticClient && tx.Bucket(bucketClients).Get([]byte(g.ClientID)) == nil {
			return ErrNotFound, nil
		}
		if err := tx.Bucket(bucketClientFamilies).Put(clientFamilyKey(g.ClientID, f), nil); err != nil {
			return nil, err
		}
		return nil, putRecords(tx, records)
	})
	if err != nil {
		return TokenPair{}, err
	}
	return pair, nil
}

type keyedRecord struct {
	key TokenKey
	rec tokenRecord
}

// newPair makes the tokens of g, of family f, and the records to store.
func newPair(f FamilyID, g Grant, now time.Time) (TokenPair, []keyedRecord) {
	access, accessKey := NewToken(f)
	base := tokenRecord{
		staticClient: g.StaticClient,
		issuedAt:     now.UnixNano(),
		clientID:     g.ClientID,
		userID:       g.UserID,
		scope:        g.Scope,
	}
	at := base
	at.kind = kindAccess
	at.expiresAt = now.Add(g.AccessLifetime).UnixNano()
	pair := TokenPair{AccessToken: access, Access: at.token(f)}
	records := []keyedRecord{{accessKey, at}}
	if g.RefreshLifetime >= 0 {
		refresh, refreshKey := NewToken(f)
		rt := base
		rt.kind = kindRefresh
		if g.RefreshScope != "" {
			rt.scope = g.RefreshScope
		}
		if g.RefreshLifetime > 0 {
			rt.expiresAt = now.Add(g.RefreshLifetime).UnixNano()
		}
		rt.pair = accessKey[:]
		pair.RefreshToken = refresh
		records = append(records, keyedRecord{refreshKey, rt})
	}
	return pair, records
}

func putRecords(tx *wtx, records []keyedRecord) error {
	tokens, expiry := tx.Bucket(bucketTokens), tx.Bucket(bucketExpiry)
	for _, r := range records {
		if err := tokens.Put(r.key[:], r.rec.encode()); err != nil {
			return err
		}
		if r.rec.expiresAt != 0 {
			if err := expiry.Put(expiryKey(r.rec.expiresAt, r.key[:]), nil); err != nil {
				return err
			}
		}
	}
	return nil
}

// AccessToken implements Store. Valid tokens are cached in memory;
// every deletion evicts, so a revoked token fails on its next use.
func (b *Bolt) AccessToken(ctx context.Context, token string, now time.Time) (Token, error) {
	key, ok := ParseToken(token)
	if !ok {
		return Token{}, ErrNotFound
	}
	t, ok, gen := b.cache.get(key)
	if !ok {
		var err error
		if t, err = b.lookup(key, now); err != nil {
			return Token{}, err
		}
		if t.Refresh {
			return Token{}, ErrNotFound
		}
		b.cache.put(key, t, gen)
	}
	if t.Expired(now) {
		return Token{}, ErrNotFound
	}
	return t, nil
}

// Lookup implements Store.
func (b *Bolt) Lookup(ctx context.Context, token string, now time.Time) (Token, error) {
	key, ok := ParseToken(token)
	if !ok {
		return Token{}, ErrNotFound
	}
	return b.lookup(key, now)
}

func (b *Bolt) lookup(key TokenKey, now time.Time) (Token, error) {
	var t Token
	err := b.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketTokens).Get(key[:])
		if v == nil {
			return ErrNotFound
		}
		rec, err := decodeRecord(v)
		if err != nil {
			return err
		}
		if rec.expired(now) {
			return ErrNotFound
		}
		t = rec.token(key.Family())
		return nil
	})
	return t, err
}

// RevokeToken implements Store.
func (b *Bolt) RevokeToken(ctx context.Context, token string) error {
	key, ok := ParseToken(token)
	if !ok {
		return ErrNotFound
	}
	return b.batch(func(tx *wtx) (error, error) {
		rec, err := decodeRecord(tx.Bucket(bucketTokens).Get(key[:]))
		if err != nil {
			return ErrNotFound, nil
		}
		if err := deleteToken(tx, key); err != nil {
			return nil, err
		}
		return nil, forgetFamilyIfEmpty(tx, key.Family(), rec.clientID)
	})
}

// forgetFamilyIfEmpty drops the client's index entry of a family that
// has no token left.
func forgetFamilyIfEmpty(tx *wtx, f FamilyID, clientID string) error {
	if k, _ := tx.Bucket(bucketTokens).Cursor().Seek(f[:]); k != nil && bytes.HasPrefix(k, f[:]) {
		return nil
	}
	return tx.Bucket(bucketClientFamilies).Delete(clientFamilyKey(clientID, f))
}

// Refresh implements Store.
func (b *Bolt) Refresh(ctx context.Context, refreshToken string, now time.Time, check RefreshCheck) (TokenPair, error) {
	key, ok := ParseToken(refreshToken)
	if !ok {
		return TokenPair{}, ErrNotFound
	}
	f := key.Family()
	var pair TokenPair
	err := b.batch(func(tx *wtx) (error, error) {
		tokens := tx.Bucket(bucketTokens)
		v := tokens.Get(key[:])
		if v == nil {
			return ErrNotFound, nil
		}
		old, err := decodeRecord(v)
		if err != nil {
			return nil, err
		}
		if old.kind != kindRefresh || old.expired(now) {
			return ErrNotFound, nil
		}
		if old.used {
			// Commit the revocation, then report the reuse.
			return ErrTokenReused, revokeFamily(tx, f)
		}
		g, err := check(old.token(f))
		if err != nil {
			return err, nil
		}
		old.used = true
		if err := tokens.Put(key[:], old.encode()); err != nil {
			return nil, err
		}
		if len(old.pair) == TokenKeyLen {
			if err := deleteToken(tx, TokenKey(old.pair)); err != nil {
				return nil, err
			}
		}
		var records []keyedRecord
		pair, records = newPair(f, g, now)
		return nil, putRecords(tx, records)
	})
	if err != nil {
		return TokenPair{}, err
	}
	return pair, nil
}

// batch runs fn in a write transaction that concurrent calls share (see
// groupCommit): one fsync for many grants, each committed before its
// caller returns. fn separates its outcome — a refusal such as
// ErrNotFound, which still commits whatever fn wrote — from a failure,
// which rolls back the shared transaction and makes every write of it
// run again alone; so refusals must not fail it. fn may run more than
// once.
func (b *Bolt) batch(fn func(tx *wtx) (outcome, err error)) error {
	var outcome error
	var deleted []TokenKey
	err := b.writes.do(func(tx *bolt.Tx) error {
		w := &wtx{Tx: tx}
		var err error
		outcome, err = fn(w)
		deleted = w.deleted
		return err
	})
	if err != nil {
		return err
	}
	b.cache.evict(deleted)
	return outcome
}

// RevokeFamily implements Store.
func (b *Bolt) RevokeFamily(ctx context.Context, f FamilyID) error {
	return b.update(func(tx *wtx) error { return revokeFamily(tx, f) })
}

// revokeFamily deletes every token of f and its index entries.
func revokeFamily(tx *wtx, f FamilyID) error {
	var keys []TokenKey
	c := tx.Bucket(bucketTokens).Cursor()
	for k, _ := c.Seek(f[:]); k != nil && bytes.HasPrefix(k, f[:]); k, _ = c.Next() {
		keys = append(keys, TokenKey(k))
	}
	var clientID string
	for _, k := range keys {
		rec, err := decodeRecord(tx.Bucket(bucketTokens).Get(k[:]))
		if err == nil {
			clientID = rec.clientID
		}
		if err := deleteToken(tx, k); err != nil {
			return err
		}
	}
	if len(keys) > 0 {
		return tx.Bucket(bucketClientFamilies).Delete(clientFamilyKey(clientID, f))
	}
	return nil
}

// deleteToken deletes one token and its expiry entry, if it exists.
func deleteToken(tx *wtx, k TokenKey) error {
	tokens := tx.Bucket(bucketTokens)
	v := tokens.Get(k[:])
	if v == nil {
		return nil
	}
	tx.deleted = append(tx.deleted, k)
	if rec, err := decodeRecord(v); err == nil && rec.expiresAt != 0 {
		if err := tx.Bucket(bucketExpiry).Delete(expiryKey(rec.expiresAt, k[:])); err != nil {
			return err
		}
	}
	return tokens.Delete(k[:])
}

// DeleteExpired implements Store.
func (b *Bolt) DeleteExpired(ctx context.Context, now time.Time, max int) (int, error) {
	var n int
	err := b.update(func(tx *wtx) error {
		n = 0
		var expired [][]byte
		c := tx.Bucket(bucketExpiry).Cursor()
		limit := uint64(now.UnixNano())
		for k, _ := c.First(); k != nil && len(expired) < max; k, _ = c.Next() {
			if len(k) != 8+TokenKeyLen || binary.BigEndian.Uint64(k) > limit {
				break
			}
			expired = append(expired, bytes.Clone(k))
		}
		tokens := tx.Bucket(bucketTokens)
		families := map[FamilyID]string{}
		for _, k := range expired {
			tk := TokenKey(k[8:])
			if rec, err := decodeRecord(tokens.Get(tk[:])); err == nil {
				families[tk.Family()] = rec.clientID
			}
			if err := tokens.Delete(tk[:]); err != nil {
				return err
			}
			tx.deleted = append(tx.deleted, tk)
			if err := tx.Bucket(bucketExpiry).Delete(k); err != nil {
				return err
			}
			n++
		}
		for f, clientID := range families {
			if err := forgetFamilyIfEmpty(tx, f, clientID); err != nil {
				return err
			}
		}
		return deleteExpiredCodes(tx.Tx, now)
	})
	return n, err
}

// CountTokens reports how many token records the file holds; for tests
// and diagnostics.
func (b *Bolt) CountTokens() (int, error) {
	var n int
	err := b.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketTokens).Stats().KeyN
		return nil
	})
	return n, err
}

func expiryKey(expiresAt int64, key []byte) []byte {
	k := make([]byte, 8, 8+len(key))
	binary.BigEndian.PutUint64(k, uint64(expiresAt))
	return append(k, key...)
}

func clientFamilyPrefix(clientID string) []byte {
	k := binary.AppendUvarint(nil, uint64(len(clientID)))
	return append(k, clientID...)
}

func clientFamilyKey(clientID string, f FamilyID) []byte {
	return append(clientFamilyPrefix(clientID), f[:]...)
}

// Interface guards
var _ Store = (*Bolt)(nil)
