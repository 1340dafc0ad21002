package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

func code(now time.Time) AuthCode {
	return AuthCode{ClientID: "app", StaticClient: true, UserID: json.RawMessage(`7`), Scope: "read",
		RedirectURI: "https://app.example/cb", Challenge: "c", IssuedAt: now, ExpiresAt: now.Add(time.Minute)}
}

func redeemAs(clientID string) CodeCheck {
	return func(c AuthCode) (Grant, error) {
		if c.ClientID != clientID {
			return Grant{}, errors.New("another client's code")
		}
		if clientID == "wrong-verifier" {
			return Grant{}, fmt.Errorf("%w: wrong verifier", ErrBurnCode)
		}
		g := grant()
		g.UserID, g.Scope = c.UserID, c.Scope
		return g, nil
	}
}

func TestCodeRedeemsOnceAndReuseRevokesItsTokens(t *testing.T) {
	b := openTest(t)
	now := time.Now()
	c, err := b.CreateCode(ctx, code(now))
	if err != nil || len(c) != 43 {
		t.Fatalf("code %q, %v", c, err)
	}
	pair, err := b.RedeemCode(ctx, c, now, redeemAs("app"))
	if err != nil || string(pair.Access.UserID) != "7" {
		t.Fatalf("%+v %v", pair, err)
	}
	if _, err := b.AccessToken(ctx, pair.AccessToken, now); err != nil {
		t.Fatal(err)
	}
	if _, err := b.RedeemCode(ctx, c, now, redeemAs("app")); !errors.Is(err, ErrTokenReused) {
		t.Fatalf("second redemption: %v", err)
	}
	if _, err := b.AccessToken(ctx, pair.AccessToken, now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the tokens of a reused code still work: %v", err)
	}
	if _, err := b.Refresh(ctx, pair.RefreshToken, now, keep); !errors.Is(err, ErrNotFound) {
		t.Fatalf("its refresh token: %v", err)
	}
}

func TestAFailedReplayRevokesNothingAndSpendsNothing(t *testing.T) {
	b := openTest(t)
	now := time.Now()
	c, _ := b.CreateCode(ctx, code(now))
	pair, _ := b.RedeemCode(ctx, c, now, redeemAs("app"))
	// A replayer that fails the check (another client, a wrong verifier)
	// neither revokes the tokens nor removes the used code's record...
	for _, who := range []string{"mallory", "wrong-verifier"} {
		if _, err := b.RedeemCode(ctx, c, now, redeemAs(who)); err == nil || errors.Is(err, ErrTokenReused) {
			t.Fatalf("%s: err = %v", who, err)
		}
	}
	if _, err := b.AccessToken(ctx, pair.AccessToken, now); err != nil {
		t.Fatalf("a failed replay revoked the tokens: %v", err)
	}
	// ...so a replay that passes it is still seen as reuse.
	if _, err := b.RedeemCode(ctx, c, now, redeemAs("app")); !errors.Is(err, ErrTokenReused) {
		t.Fatalf("reuse after failed replays: %v", err)
	}
}

func TestOnlyAWrongVerifierOrRedirectSpendsAnUnusedCode(t *testing.T) {
	b := openTest(t)
	now := time.Now()
	c, _ := b.CreateCode(ctx, code(now))
	// Another client cannot burn it...
	if _, err := b.RedeemCode(ctx, c, now, redeemAs("mallory")); err == nil {
		t.Fatal("another client redeemed the code")
	}
	// ...a wrong verifier does.
	if _, err := b.RedeemCode(ctx, c, now, func(AuthCode) (Grant, error) { return Grant{}, ErrBurnCode }); !errors.Is(err, ErrBurnCode) {
		t.Fatal(err)
	}
	if _, err := b.RedeemCode(ctx, c, now, redeemAs("app")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the code survived a wrong verifier: %v", err)
	}
}

func TestExpiredCodeIsNotFound(t *testing.T) {
	b := openTest(t)
	now := time.Now()
	c, _ := b.CreateCode(ctx, code(now))
	if _, err := b.RedeemCode(ctx, c, now.Add(time.Minute), redeemAs("app")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
	if _, err := b.DeleteExpired(ctx, now.Add(time.Minute), 100); err != nil {
		t.Fatal(err)
	}
	n := 0
	_ = b.db.View(func(tx *bolt.Tx) error { n = tx.Bucket(bucketCodes).Stats().KeyN; return nil })
	if n != 0 {
		t.Fatalf("%d codes left after the sweep", n)
	}
}

func TestConcurrentRedemptionsHaveOneWinner(t *testing.T) {
	b := openTest(t)
	now := time.Now()
	c, _ := b.CreateCode(ctx, code(now))
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 20 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := b.RedeemCode(ctx, c, now, redeemAs("app")); err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d winners", wins)
	}
	// The losers presented a used code, which revoked what the winner got
	// (RFC 6749 §4.1.2: the tokens of a reused code SHOULD be revoked).
	if n, _ := b.CountTokens(); n != 0 {
		t.Fatalf("%d tokens left of a reused code", n)
	}
}
