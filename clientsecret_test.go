package oauth2provider

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/caddy-plugins/oauth2provider/store"
)

var testSaltBytes = []byte("test-salt-16byte")

func TestSecretHashRoundTrip(t *testing.T) {
	text, err := hashSecretCost("s3cret", testSaltBytes, 10)
	if err != nil {
		t.Fatal(err)
	}
	h, err := parseSecretHash(text)
	if err != nil {
		t.Fatal(err)
	}
	if !h.verify("s3cret", testSaltBytes) || h.verify("s3cret ", testSaltBytes) || h.verify("s3cret", []byte("other-salt-16byt")) {
		t.Fatal("verify is wrong")
	}
	other, _ := hashSecretCost("s3cret", testSaltBytes, 10)
	if other == text {
		t.Fatal("two hashes of one secret are equal: no client salt")
	}
}

func TestSaltMustBeSixteenBytesOfBase64(t *testing.T) {
	for s, ok := range map[string]bool{
		"": false, "c2hvcnQ=": false, "not base64!": false,
		"dGVzdC1zYWx0LTE2Ynl0ZQ==": true, "dGVzdC1zYWx0LTE2Ynl0ZQ": true, "-_-_-_-_-_-_-_-_-_-_-_": true,
	} {
		if _, err := decodeSalt(s); (err == nil) != ok {
			t.Errorf("%q: err = %v", s, err)
		}
	}
}

func TestSecretCacheRemembersOnlyMatches(t *testing.T) {
	text, _ := hashSecretCost("right", testSaltBytes, 10)
	h, _ := parseSecretHash(text)
	c := newSecretCache(10)
	if c.verify(h, text, "wrong", testSaltBytes) || c.size() != 0 {
		t.Fatal("a wrong secret was accepted or remembered")
	}
	if !c.verify(h, text, "right", testSaltBytes) || c.size() != 1 {
		t.Fatal("the right secret was refused or not remembered")
	}
	// Remembered: no scrypt run, so even a wrong salt does not matter.
	if !c.verify(h, text, "right", nil) {
		t.Fatal("not served from the cache")
	}
	// A new hash of the client (a new secret) is not the cached one.
	newText, _ := hashSecretCost("new", testSaltBytes, 10)
	nh, _ := parseSecretHash(newText)
	if c.verify(nh, newText, "right", testSaltBytes) {
		t.Fatal("the old secret passed against a new hash")
	}
}

func TestSecretCacheIsBounded(t *testing.T) {
	c := newSecretCache(20)
	for i := range 100 {
		secret := fmt.Sprint("secret-", i)
		text, _ := hashSecretCost(secret, testSaltBytes, 10)
		h, _ := parseSecretHash(text)
		if !c.verify(h, text, secret, testSaltBytes) {
			t.Fatal(secret)
		}
		if c.size() > 20 {
			t.Fatalf("%d entries, bound 20", c.size())
		}
	}
}

func TestRevokedClientIsNotServedFromTheCache(t *testing.T) {
	e := startCaddy(t, testConfig{})
	hash, _ := hashSecretCost("cached-secret", testSaltBytes, 10)
	if err := e.app().store.CreateClient(context.Background(), store.Client{ID: "cached", SecretHash: hash}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if r := e.post(DefaultTokenPath, basic("cached", "cached-secret"), aliceForm); r.status != http.StatusOK {
			t.Fatalf("%d %s", r.status, r.body)
		}
	}
	if e.app().secrets.size() == 0 {
		t.Fatal("the check was not cached")
	}
	if err := e.app().store.RevokeClient(context.Background(), "cached"); err != nil {
		t.Fatal(err)
	}
	assertOAuthError(t, e.post(DefaultTokenPath, basic("cached", "cached-secret"), aliceForm), http.StatusUnauthorized, "invalid_client")
	if !strings.Contains(e.post(DefaultTokenPath, basic("cached", "wrong"), aliceForm).body, "invalid_client") {
		t.Fatal("wrong secret")
	}
}
