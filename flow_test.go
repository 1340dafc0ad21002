package oauth2provider

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"testing"
	"time"

	"golang.org/x/oauth2"
)

// The whole job, as a client library sees it: log in with a password,
// call a protected route, and let the token source refresh the access
// token once it has expired.
func TestPasswordGrantProtectedCallAndAutomaticRefresh(t *testing.T) {
	e := startCaddy(t, testConfig{AccessLifetime: "3s"})
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, e.client)
	conf := &oauth2.Config{
		ClientID:     "app",
		ClientSecret: "app-secret",
		Endpoint:     oauth2.Endpoint{TokenURL: baseURL + DefaultTokenPath, AuthStyle: oauth2.AuthStyleInHeader},
	}
	tok, err := conf.PasswordCredentialsToken(ctx, "alice", "wonderland")
	if err != nil {
		t.Fatal(err)
	}
	if tok.TokenType != "bearer" || tok.RefreshToken == "" || tok.Extra("user_id") != float64(1234) {
		t.Fatalf("token = %+v, user_id = %v", tok, tok.Extra("user_id"))
	}
	if exp := time.Until(tok.Expiry); exp < time.Second || exp > 4*time.Second {
		t.Fatalf("expires in %v, want about 3s", exp)
	}

	call := func(tok *oauth2.Token) (int, map[string]string) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, baseURL+"/api/profile", nil)
		tok.SetAuthHeader(req)
		resp, err := e.client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var seen map[string]string
		body, _ := io.ReadAll(resp.Body)
		_ = json.Unmarshal(body, &seen)
		return resp.StatusCode, seen
	}
	status, seen := call(tok)
	if status != http.StatusOK || seen["user_id"] != "1234" || seen["client_id"] != "app" || seen["scope"] != "read" {
		t.Fatalf("protected call: %d, backend saw %v", status, seen)
	}

	time.Sleep(time.Until(tok.Expiry) + 100*time.Millisecond)
	if status, _ := call(tok); status != http.StatusUnauthorized {
		t.Fatalf("expired access token: %d, want 401", status)
	}

	fresh, err := conf.TokenSource(ctx, tok).Token()
	if err != nil {
		t.Fatal(err)
	}
	if fresh.AccessToken == tok.AccessToken || fresh.RefreshToken == tok.RefreshToken {
		t.Fatal("the token source did not refresh")
	}
	if status, seen := call(fresh); status != http.StatusOK || seen["user_id"] != "1234" {
		t.Fatalf("call with the refreshed token: %d, backend saw %v", status, seen)
	}
}
