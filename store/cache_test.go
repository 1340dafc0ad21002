package store

import (
	"errors"
	"sync"
	"testing"
	"time"
)

// Every way a token stops working evicts it from the cache: a cached
// token must fail on its next use.
func TestCachedTokenFailsOnceRevoked(t *testing.T) {
	now := time.Now()
	for name, revoke := range map[string]func(b *Bolt, p TokenPair) error{
		"RevokeToken":  func(b *Bolt, p TokenPair) error { return b.RevokeToken(ctx, p.AccessToken) },
		"RevokeFamily": func(b *Bolt, p TokenPair) error { return b.RevokeFamily(ctx, p.Access.Family) },
		"rotation": func(b *Bolt, p TokenPair) error {
			_, err := b.Refresh(ctx, p.RefreshToken, now, keep)
			return err
		},
		"RevokeClient": func(b *Bolt, p TokenPair) error { return b.RevokeClient(ctx, "stored") },
		"Drop":         func(b *Bolt, p TokenPair) error { return b.Drop(ctx) },
		"DeleteExpired": func(b *Bolt, p TokenPair) error {
			_, err := b.DeleteExpired(ctx, now.Add(2*time.Hour), 100)
			return err
		},
	} {
		t.Run(name, func(t *testing.T) {
			b := openTest(t)
			if err := b.CreateClient(ctx, Client{ID: "stored"}); err != nil {
				t.Fatal(err)
			}
			g := grant()
			g.ClientID, g.StaticClient = "stored", false
			p, _ := b.Issue(ctx, g, now)
			if _, err := b.AccessToken(ctx, p.AccessToken, now); err != nil || b.cache.len() != 1 {
				t.Fatalf("not cached: %v, %d entries", err, b.cache.len())
			}
			if err := revoke(b, p); err != nil {
				t.Fatal(err)
			}
			check := now
			if name == "DeleteExpired" {
				check = now.Add(2 * time.Hour)
			}
			if _, err := b.AccessToken(ctx, p.AccessToken, check); !errors.Is(err, ErrNotFound) {
				t.Fatalf("served from the cache after %s: %v", name, err)
			}
			if b.cache.len() != 0 {
				t.Fatalf("%d entries left", b.cache.len())
			}
		})
	}
}

func TestCachedTokenFailsOnceItsRefreshTokenIsReused(t *testing.T) {
	b := openTest(t)
	now := time.Now()
	p, _ := b.Issue(ctx, grant(), now)
	next, err := b.Refresh(ctx, p.RefreshToken, now, keep)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.AccessToken(ctx, next.AccessToken, now); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Refresh(ctx, p.RefreshToken, now, keep); !errors.Is(err, ErrTokenReused) {
		t.Fatal(err)
	}
	if _, err := b.AccessToken(ctx, next.AccessToken, now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("cached access token of a revoked family: %v", err)
	}
}

func TestCachedTokenStillExpires(t *testing.T) {
	b := openTest(t)
	now := time.Now()
	p, _ := b.Issue(ctx, grant(), now)
	if _, err := b.AccessToken(ctx, p.AccessToken, now); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AccessToken(ctx, p.AccessToken, now.Add(time.Hour)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("an expired cached token: %v", err)
	}
}

// A lookup that read a token before a revocation committed must not put
// it back after the revocation evicted it.
func TestCacheRefusesWhatARaceWouldPutBack(t *testing.T) {
	c := newTokenCache(10)
	var k TokenKey
	_, _, gen := c.get(k)
	c.evict([]TokenKey{{1}})
	c.put(k, Token{ClientID: "stale"}, gen)
	if _, ok, _ := c.get(k); ok {
		t.Fatal("a stale token was cached")
	}
}

func TestRevocationWinsOverConcurrentLookups(t *testing.T) {
	b := openTest(t)
	now := time.Now()
	for round := range 50 {
		p, _ := b.Issue(ctx, grant(), now)
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for {
					select {
					case <-stop:
						return
					default:
						_, _ = b.AccessToken(ctx, p.AccessToken, now)
					}
				}
			}()
		}
		time.Sleep(time.Millisecond)
		if err := b.RevokeToken(ctx, p.AccessToken); err != nil {
			t.Fatal(err)
		}
		if _, err := b.AccessToken(ctx, p.AccessToken, now); !errors.Is(err, ErrNotFound) {
			t.Fatalf("round %d: a revoked token validated right after its revocation returned: %v", round, err)
		}
		close(stop)
		wg.Wait()
		if _, err := b.AccessToken(ctx, p.AccessToken, now); !errors.Is(err, ErrNotFound) {
			t.Fatalf("round %d: a racing lookup put the revoked token back: %v", round, err)
		}
	}
}

func TestCacheIsBounded(t *testing.T) {
	c := newTokenCache(100)
	for i := range 1000 {
		var k TokenKey
		k[0], k[1] = byte(i), byte(i>>8)
		_, _, gen := c.get(k)
		c.put(k, Token{}, gen)
		if c.len() > 100 {
			t.Fatalf("%d entries", c.len())
		}
	}
}

// When a write in a shared commit fails, the others run again alone;
// their deletions are still evicted.
func TestEvictionSurvivesAGroupRerun(t *testing.T) {
	b := openTest(t)
	now := time.Now()
	for round := range 20 {
		victim, _ := b.Issue(ctx, grant(), now)
		other, _ := b.Issue(ctx, grant(), now)
		if _, err := b.AccessToken(ctx, victim.AccessToken, now); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 10 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				// A check that panics fails its write, and with it the
				// shared transaction.
				_, _ = b.Refresh(ctx, other.RefreshToken, now, func(Token) (Grant, error) { panic("a bug") })
			}()
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			if err := b.RevokeToken(ctx, victim.AccessToken); err != nil {
				t.Error(err)
			}
		}()
		close(start)
		wg.Wait()
		if _, err := b.AccessToken(ctx, victim.AccessToken, now); !errors.Is(err, ErrNotFound) {
			t.Fatalf("round %d: a revoked token passed after a rerun of its commit: %v", round, err)
		}
	}
}
