package store

import (
	"encoding/json"
	"errors"
	"sync"
	"testing"
	"time"
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

func TestCodeCheckFailureDeletesTheCodeWithoutRevoking(t *testing.T) {
	b := openTest(t)
	now := time.Now()
	c, _ := b.CreateCode(ctx, code(now))
	pair, _ := b.RedeemCode(ctx, c, now, redeemAs("app"))
	// A replayer that fails the check (no verifier, another client) does
	// not revoke the user's tokens.
	if _, err := b.RedeemCode(ctx, c, now, redeemAs("mallory")); err == nil || errors.Is(err, ErrTokenReused) {
		t.Fatalf("err = %v", err)
	}
	if _, err := b.AccessToken(ctx, pair.AccessToken, now); err != nil {
		t.Fatalf("a failed replay revoked the tokens: %v", err)
	}
	if _, err := b.RedeemCode(ctx, c, now, redeemAs("app")); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the code is still there: %v", err)
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
}
