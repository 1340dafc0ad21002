package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

var ctx = context.Background()

func openTest(t *testing.T) *Bolt {
	t.Helper()
	b, err := OpenBolt(filepath.Join(t.TempDir(), "sub", "oauth2.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = b.Close() })
	return b
}

func grant() Grant {
	return Grant{
		ClientID:        "app",
		StaticClient:    true,
		UserID:          json.RawMessage(`1234`),
		Scope:           "read",
		AccessLifetime:  time.Hour,
		RefreshLifetime: 24 * time.Hour,
	}
}

func keep(old Token) (Grant, error) {
	g := grant()
	g.ClientID, g.UserID, g.Scope = old.ClientID, old.UserID, old.Scope
	return g, nil
}

func TestFileIsPrivate(t *testing.T) {
	b := openTest(t)
	fi, err := os.Stat(b.Path())
	if err != nil {
		t.Fatal(err)
	}
	if mode := fi.Mode().Perm(); mode != 0o600 {
		t.Fatalf("mode = %o, want 600", mode)
	}
}

func TestSecondOpenOfAFileReportsItLocked(t *testing.T) {
	b := openTest(t)
	_, err := OpenBolt(b.Path(), 100*time.Millisecond)
	if !errors.Is(err, ErrLocked) {
		t.Fatalf("err = %v, want ErrLocked", err)
	}
}

func TestIssuedAccessTokenIsFound(t *testing.T) {
	b := openTest(t)
	now := time.Now()
	pair, err := b.Issue(ctx, grant(), now)
	if err != nil {
		t.Fatal(err)
	}
	if len(pair.AccessToken) < 43 || pair.RefreshToken == "" || pair.AccessToken == pair.RefreshToken {
		t.Fatalf("unexpected pair %+v", pair)
	}
	tok, err := b.AccessToken(ctx, pair.AccessToken, now)
	if err != nil {
		t.Fatal(err)
	}
	if tok.ClientID != "app" || string(tok.UserID) != "1234" || tok.Scope != "read" {
		t.Fatalf("token = %+v", tok)
	}
	if !tok.ExpiresAt.Equal(time.Unix(0, now.Add(time.Hour).UnixNano())) {
		t.Fatalf("expires at %v", tok.ExpiresAt)
	}
	// A refresh token is not an access token.
	if _, err := b.AccessToken(ctx, pair.RefreshToken, now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("refresh token used as access token: %v", err)
	}
}

func TestTokensAreStoredOnlyAsDigests(t *testing.T) {
	b := openTest(t)
	pair, err := b.Issue(ctx, grant(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	path := b.Path()
	_ = b.Close()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{pair.AccessToken, pair.RefreshToken} {
		secret := tok[strings.IndexByte(tok, '.')+1:]
		if strings.Contains(string(raw), secret) {
			t.Fatalf("token secret found in the database file")
		}
	}
}

func TestAccessTokenExpires(t *testing.T) {
	b := openTest(t)
	now := time.Now()
	pair, _ := b.Issue(ctx, grant(), now)
	if _, err := b.AccessToken(ctx, pair.AccessToken, now.Add(time.Hour)); !errors.Is(err, ErrNotFound) {
		t.Fatalf("expired token: %v", err)
	}
}

func TestMalformedAndUnknownTokensAreNotFound(t *testing.T) {
	b := openTest(t)
	pair, _ := b.Issue(ctx, grant(), time.Now())
	forged := pair.AccessToken[:len(pair.AccessToken)-2] + "AA"
	for _, tok := range []string{"", "abc", strings.Repeat("a", 66), forged, pair.AccessToken + "x"} {
		if _, err := b.AccessToken(ctx, tok, time.Now()); !errors.Is(err, ErrNotFound) {
			t.Errorf("%q: err = %v", tok, err)
		}
	}
}

func TestRefreshRotatesThePair(t *testing.T) {
	b := openTest(t)
	now := time.Now()
	first, _ := b.Issue(ctx, grant(), now)
	second, err := b.Refresh(ctx, first.RefreshToken, now, keep)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.AccessToken(ctx, first.AccessToken, now); !errors.Is(err, ErrNotFound) {
		t.Errorf("old access token still works: %v", err)
	}
	if _, err := b.AccessToken(ctx, second.AccessToken, now); err != nil {
		t.Errorf("new access token: %v", err)
	}
	if second.Access.Family != first.Access.Family {
		t.Errorf("family changed on refresh")
	}
}

func TestRefreshTokenReuseRevokesTheFamily(t *testing.T) {
	b := openTest(t)
	now := time.Now()
	first, _ := b.Issue(ctx, grant(), now)
	second, err := b.Refresh(ctx, first.RefreshToken, now, keep)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := b.Issue(ctx, grant(), now)
	if _, err := b.Refresh(ctx, first.RefreshToken, now, keep); !errors.Is(err, ErrTokenReused) {
		t.Fatalf("reuse: err = %v", err)
	}
	if _, err := b.AccessToken(ctx, second.AccessToken, now); !errors.Is(err, ErrNotFound) {
		t.Errorf("access token of a revoked family still works: %v", err)
	}
	if _, err := b.Refresh(ctx, second.RefreshToken, now, keep); !errors.Is(err, ErrNotFound) {
		t.Errorf("refresh token of a revoked family: %v", err)
	}
	if _, err := b.AccessToken(ctx, other.AccessToken, now); err != nil {
		t.Errorf("another family was revoked too: %v", err)
	}
}

func TestRefreshCheckFailureLeavesTheTokenUnused(t *testing.T) {
	b := openTest(t)
	now := time.Now()
	first, _ := b.Issue(ctx, grant(), now)
	refuse := errors.New("wrong client")
	if _, err := b.Refresh(ctx, first.RefreshToken, now, func(Token) (Grant, error) { return Grant{}, refuse }); !errors.Is(err, refuse) {
		t.Fatalf("err = %v", err)
	}
	if _, err := b.AccessToken(ctx, first.AccessToken, now); err != nil {
		t.Fatalf("refused refresh revoked the access token: %v", err)
	}
	if _, err := b.Refresh(ctx, first.RefreshToken, now, keep); err != nil {
		t.Fatalf("refused refresh used up the token: %v", err)
	}
}

func TestExpiredRefreshTokenIsNotFound(t *testing.T) {
	b := openTest(t)
	now := time.Now()
	first, _ := b.Issue(ctx, grant(), now)
	if _, err := b.Refresh(ctx, first.RefreshToken, now.Add(25*time.Hour), keep); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
}

func TestRefreshTokenWithoutLifetimeNeverExpires(t *testing.T) {
	b := openTest(t)
	now := time.Now()
	g := grant()
	g.RefreshLifetime = 0
	first, _ := b.Issue(ctx, g, now)
	if _, err := b.Refresh(ctx, first.RefreshToken, now.Add(100*365*24*time.Hour), keep); err != nil {
		t.Fatalf("err = %v", err)
	}
}

func TestNegativeRefreshLifetimeIssuesNoRefreshToken(t *testing.T) {
	b := openTest(t)
	g := grant()
	g.RefreshLifetime = -1
	pair, err := b.Issue(ctx, g, time.Now())
	if err != nil || pair.RefreshToken != "" || pair.AccessToken == "" {
		t.Fatalf("pair = %+v, err = %v", pair, err)
	}
}

func TestConcurrentRefreshesOfOneTokenHaveOneWinner(t *testing.T) {
	b := openTest(t)
	now := time.Now()
	first, _ := b.Issue(ctx, grant(), now)
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for range 50 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := b.Refresh(ctx, first.RefreshToken, now, keep)
			if err == nil {
				mu.Lock()
				wins++
				mu.Unlock()
			} else if !errors.Is(err, ErrTokenReused) && !errors.Is(err, ErrNotFound) {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d refreshes succeeded, want 1", wins)
	}
}

func TestRevokeClientRemovesItAndItsTokens(t *testing.T) {
	b := openTest(t)
	now := time.Now()
	if err := b.CreateClient(ctx, Client{ID: "app", SecretHash: "h", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := b.CreateClient(ctx, Client{ID: "app"}); !errors.Is(err, ErrClientExists) {
		t.Fatalf("duplicate client: %v", err)
	}
	mine, _ := b.Issue(ctx, grant(), now)
	refreshed, _ := b.Refresh(ctx, mine.RefreshToken, now, keep)
	g := grant()
	g.ClientID = "other"
	theirs, _ := b.Issue(ctx, g, now)

	if err := b.RevokeClient(ctx, "app"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Client(ctx, "app"); !errors.Is(err, ErrNotFound) {
		t.Errorf("client still there: %v", err)
	}
	if _, err := b.AccessToken(ctx, refreshed.AccessToken, now); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoked client's token works: %v", err)
	}
	if _, err := b.Refresh(ctx, refreshed.RefreshToken, now, keep); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoked client's refresh token works: %v", err)
	}
	if _, err := b.AccessToken(ctx, theirs.AccessToken, now); err != nil {
		t.Errorf("another client's token was revoked: %v", err)
	}
	if err := b.RevokeClient(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown client: %v", err)
	}
}

func TestIssueRefusesAStoredClientThatIsGone(t *testing.T) {
	b := openTest(t)
	g := grant()
	g.StaticClient = false
	if _, err := b.Issue(ctx, g, time.Now()); !errors.Is(err, ErrNotFound) {
		t.Fatalf("err = %v", err)
	}
	if n, _ := b.CountTokens(); n != 0 {
		t.Fatalf("%d tokens stored", n)
	}
	if err := b.CreateClient(ctx, Client{ID: g.ClientID}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Issue(ctx, g, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func TestClientsAreListedInOrder(t *testing.T) {
	b := openTest(t)
	for _, id := range []string{"b", "a", "c"} {
		if err := b.CreateClient(ctx, Client{ID: id, ClientPolicy: ClientPolicy{GrantTypes: []string{"password"}}}); err != nil {
			t.Fatal(err)
		}
	}
	list, err := b.Clients(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, c := range list {
		ids = append(ids, c.ID)
	}
	if strings.Join(ids, ",") != "a,b,c" || list[0].GrantTypes[0] != "password" {
		t.Fatalf("clients = %+v", list)
	}
}

func TestDeleteExpiredKeepsLiveTokens(t *testing.T) {
	b := openTest(t)
	now := time.Now()
	short := grant()
	short.AccessLifetime, short.RefreshLifetime = time.Minute, 2*time.Minute
	dead, _ := b.Issue(ctx, short, now)
	live, _ := b.Issue(ctx, grant(), now)

	later := now.Add(3 * time.Minute)
	n, err := b.DeleteExpired(ctx, later, 1)
	if err != nil || n != 1 {
		t.Fatalf("first sweep removed %d, err %v", n, err)
	}
	n, err = b.DeleteExpired(ctx, later, 100)
	if err != nil || n != 1 {
		t.Fatalf("second sweep removed %d, err %v", n, err)
	}
	if count, _ := b.CountTokens(); count != 2 {
		t.Fatalf("%d tokens left, want 2", count)
	}
	if _, err := b.Refresh(ctx, dead.RefreshToken, now, keep); !errors.Is(err, ErrNotFound) {
		t.Errorf("swept refresh token: %v", err)
	}
	if _, err := b.AccessToken(ctx, live.AccessToken, later); err != nil {
		t.Errorf("live token swept: %v", err)
	}
}

func TestDropEmptiesTheStore(t *testing.T) {
	b := openTest(t)
	_ = b.CreateClient(ctx, Client{ID: "app"})
	pair, _ := b.Issue(ctx, grant(), time.Now())
	if err := b.Drop(ctx); err != nil {
		t.Fatal(err)
	}
	if list, _ := b.Clients(ctx); len(list) != 0 {
		t.Errorf("clients left: %v", list)
	}
	if _, err := b.AccessToken(ctx, pair.AccessToken, time.Now()); !errors.Is(err, ErrNotFound) {
		t.Errorf("token left: %v", err)
	}
}

func TestRecordRoundTrip(t *testing.T) {
	in := tokenRecord{kind: kindRefresh, used: true, staticClient: true, issuedAt: -5, expiresAt: 1 << 62,
		clientID: "c", userID: []byte(`"u"`), scope: "a b", pair: make([]byte, TokenKeyLen)}
	out, err := decodeRecord(in.encode())
	if err != nil {
		t.Fatal(err)
	}
	if out.kind != in.kind || out.used != in.used || out.staticClient != in.staticClient ||
		out.issuedAt != in.issuedAt || out.expiresAt != in.expiresAt || out.clientID != in.clientID ||
		string(out.userID) != string(in.userID) || out.scope != in.scope || len(out.pair) != TokenKeyLen {
		t.Fatalf("%+v != %+v", out, in)
	}
	enc := in.encode()
	for i := range len(enc) {
		if _, err := decodeRecord(enc[:i]); err == nil {
			t.Fatalf("truncated record of %d bytes decoded", i)
		}
	}
}

func TestLookupFindsLiveAccessAndRefreshTokens(t *testing.T) {
	b := openTest(t)
	now := time.Now()
	pair, _ := b.Issue(ctx, grant(), now)
	at, err := b.Lookup(ctx, pair.AccessToken, now)
	if err != nil || at.Refresh {
		t.Fatalf("access: %+v %v", at, err)
	}
	rt, err := b.Lookup(ctx, pair.RefreshToken, now)
	if err != nil || !rt.Refresh || rt.ClientID != "app" {
		t.Fatalf("refresh: %+v %v", rt, err)
	}
	if _, err := b.Refresh(ctx, pair.RefreshToken, now, keep); err != nil {
		t.Fatal(err)
	}
	if used, err := b.Lookup(ctx, pair.RefreshToken, now); err != nil || !used.Used {
		t.Fatalf("a used refresh token: %+v %v", used, err)
	}
}

func TestRevokeTokenRevokesOnlyThatToken(t *testing.T) {
	b := openTest(t)
	now := time.Now()
	pair, _ := b.Issue(ctx, grant(), now)
	if err := b.RevokeToken(ctx, pair.AccessToken); err != nil {
		t.Fatal(err)
	}
	if _, err := b.AccessToken(ctx, pair.AccessToken, now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoked access token: %v", err)
	}
	if _, err := b.Refresh(ctx, pair.RefreshToken, now, keep); err != nil {
		t.Fatalf("its refresh token: %v", err)
	}
	if err := b.RevokeToken(ctx, pair.AccessToken); !errors.Is(err, ErrNotFound) {
		t.Fatalf("revoking twice: %v", err)
	}
}

func clientFamilies(t *testing.T, b *Bolt, clientID string) int {
	t.Helper()
	n := 0
	_ = b.db.View(func(tx *bolt.Tx) error {
		prefix := clientFamilyPrefix(clientID)
		c := tx.Bucket(bucketClientFamilies).Cursor()
		for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
			n++
		}
		return nil
	})
	return n
}

func TestNoFamilyIndexIsLeftBehind(t *testing.T) {
	b := openTest(t)
	now := time.Now()
	if err := b.CreateClient(ctx, Client{ID: "machine"}); err != nil {
		t.Fatal(err)
	}
	g := grant()
	g.ClientID, g.StaticClient, g.RefreshLifetime = "machine", false, -1
	p, _ := b.Issue(ctx, g, now)
	q, _ := b.Issue(ctx, g, now)
	if n := clientFamilies(t, b, "machine"); n != 2 {
		t.Fatalf("%d index entries, want 2", n)
	}
	if err := b.RevokeToken(ctx, p.AccessToken); err != nil {
		t.Fatal(err)
	}
	if n := clientFamilies(t, b, "machine"); n != 1 {
		t.Fatalf("%d index entries after revoking a family's only token, want 1", n)
	}
	if err := b.RevokeClient(ctx, "machine"); err != nil {
		t.Fatal(err)
	}
	if n := clientFamilies(t, b, "machine"); n != 0 {
		t.Fatalf("%d index entries after revoking the client", n)
	}
	if _, err := b.AccessToken(ctx, q.AccessToken, now); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the client's token: %v", err)
	}
}

func TestRefreshTokenKeepsItsScopeWhenTheAccessTokenIsNarrowed(t *testing.T) {
	b := openTest(t)
	now := time.Now()
	g := grant()
	g.Scope = "read write"
	p, _ := b.Issue(ctx, g, now)
	next, err := b.Refresh(ctx, p.RefreshToken, now, func(old Token) (Grant, error) {
		n := grant()
		n.Scope, n.RefreshScope = "read", old.Scope
		return n, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if next.Access.Scope != "read" {
		t.Fatalf("access scope %q", next.Access.Scope)
	}
	rt, err := b.Lookup(ctx, next.RefreshToken, now)
	if err != nil || rt.Scope != "read write" {
		t.Fatalf("refresh scope %q, %v", rt.Scope, err)
	}
}
