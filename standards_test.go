package oauth2provider

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/oauth2"
	"golang.org/x/oauth2/clientcredentials"
)

func TestClientCredentialsGrantGivesAMachineToken(t *testing.T) {
	e := startCaddy(t, testConfig{})
	ctx := context.WithValue(context.Background(), oauth2.HTTPClient, e.client)
	conf := clientcredentials.Config{
		ClientID:     "machine",
		ClientSecret: "machine-secret",
		TokenURL:     baseURL + DefaultTokenPath,
		Scopes:       []string{"jobs", "read"},
		AuthStyle:    oauth2.AuthStyleInHeader,
	}
	tok, err := conf.Token(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if tok.RefreshToken != "" || tok.Extra("user_id") != nil {
		t.Fatalf("a machine token with a refresh token or a user: %+v %v", tok, tok.Extra("user_id"))
	}
	resp, err := conf.Client(ctx).Get(baseURL + "/api/jobs")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var seen map[string]string
	body, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(body, &seen)
	// {http.auth.user.id} is empty: the token speaks for a client, not a
	// user; {http.auth.user.client_id} names the client.
	if resp.StatusCode != 200 || seen["user_id"] != "" || seen["client_id"] != "machine" || seen["scope"] != "jobs read" {
		t.Fatalf("%d, backend saw %s", resp.StatusCode, body)
	}

	// The default scope, and a scope the client may not have.
	r := e.token("machine", url.Values{"grant_type": {"client_credentials"}})
	if r.status != 200 || r.str("scope") != "jobs" {
		t.Fatalf("default scope: %d %s", r.status, r.body)
	}
	assertOAuthError(t, e.token("machine", url.Values{"grant_type": {"client_credentials"}, "scope": {"admin"}}), 400, "invalid_scope")
	// The machine client may not log users in, and app clients may not
	// mint machine tokens unless allowed.
	assertOAuthError(t, e.token("machine", aliceForm), 400, "unauthorized_client")
	assertOAuthError(t, e.token("other", url.Values{"grant_type": {"client_credentials"}}), 400, "unauthorized_client")
}

func (e *env) revoke(id, token string) reply {
	e.t.Helper()
	return e.post(DefaultRevocationPath, basic(id, clientSecret(id)), url.Values{"token": {token}})
}

func TestRevokingARefreshTokenLogsTheFamilyOut(t *testing.T) {
	e := startCaddy(t, testConfig{})
	first := e.login("other")
	second := e.refresh("other", first.str("refresh_token"))

	// Another client's attempt: 200, and nothing happens.
	if r := e.revoke("app", second.str("refresh_token")); r.status != 200 {
		t.Fatalf("another client's revocation: %d %s", r.status, r.body)
	}
	if r := e.get("/api/x", second.str("access_token")); r.status != 200 {
		t.Fatalf("another client revoked the token: %d", r.status)
	}

	r := e.revoke("other", second.str("refresh_token"))
	if r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	assertNoStore(t, r)
	if r := e.get("/api/x", second.str("access_token")); r.status != 401 {
		t.Fatalf("the family's access token after logout: %d", r.status)
	}
	assertOAuthError(t, e.refresh("other", second.str("refresh_token")), 400, "invalid_grant")
}

func TestRevokingAnAccessTokenRevokesOnlyIt(t *testing.T) {
	e := startCaddy(t, testConfig{})
	pair := e.login("other")
	if r := e.get("/api/x", pair.str("access_token")); r.status != 200 { // now in the gate's cache
		t.Fatalf("before revocation: %d", r.status)
	}
	if r := e.post(DefaultRevocationPath, basic("other", "other-secret"),
		url.Values{"token": {pair.str("access_token")}, "token_type_hint": {"access_token"}}); r.status != 200 {
		t.Fatalf("%d %s", r.status, r.body)
	}
	if r := e.get("/api/x", pair.str("access_token")); r.status != 401 {
		t.Fatalf("revoked access token: %d", r.status)
	}
	if r := e.refresh("other", pair.str("refresh_token")); r.status != 200 {
		t.Fatalf("its refresh token: %d %s", r.status, r.body)
	}
}

func TestRevocationErrors(t *testing.T) {
	e := startCaddy(t, testConfig{})
	for _, tok := range []string{"unknown-token", "AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"} {
		if r := e.revoke("other", tok); r.status != 200 {
			t.Errorf("unknown token %q: %d %s", tok, r.status, r.body)
		}
	}
	assertOAuthError(t, e.post(DefaultRevocationPath, "", url.Values{"token": {"x"}}), 401, "invalid_client")
	assertOAuthError(t, e.post(DefaultRevocationPath, basic("other", "wrong"), url.Values{"token": {"x"}}), 401, "invalid_client")
	assertOAuthError(t, e.post(DefaultRevocationPath, basic("other", "other-secret"), url.Values{}), 400, "invalid_request")
	assertOAuthError(t, e.post(DefaultRevocationPath+"?token=x", basic("other", "other-secret"), url.Values{"token": {"x"}}), 400, "invalid_request")
	assertOAuthError(t, e.get(DefaultRevocationPath, ""), 405, "invalid_request")
}

func (e *env) introspect(id, token string) reply {
	e.t.Helper()
	return e.post(DefaultIntrospectionPath, basic(id, clientSecret(id)), url.Values{"token": {token}})
}

func TestIntrospection(t *testing.T) {
	e := startCaddy(t, testConfig{})
	live := e.login("app")
	before := time.Now().Unix()

	r := e.introspect("other", live.str("access_token")) // any client may ask
	if r.status != 200 || r.json["active"] != true || r.str("client_id") != "app" || r.str("scope") != "read" ||
		r.str("token_type") != "bearer" || r.str("sub") != "1234" {
		t.Fatalf("live access token: %d %s", r.status, r.body)
	}
	if exp, iat := r.json["exp"].(float64), r.json["iat"].(float64); int64(iat) > before || int64(exp) < before+3500 {
		t.Fatalf("iat %v exp %v", iat, exp)
	}
	assertNoStore(t, r)
	if r := e.introspect("other", live.str("refresh_token")); r.json["active"] != true || r.str("token_type") != "refresh_token" {
		t.Fatalf("live refresh token: %s", r.body)
	}

	expired := func() string {
		g := e.app().grant(e.app().static["other"], []byte(`1234`), "")
		pair, err := e.app().store.Issue(context.Background(), g, time.Now().Add(-2*time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return pair.AccessToken
	}()
	revoked := e.login("other")
	e.get("/api/x", revoked.str("access_token")) // cached by the gate
	e.revoke("other", revoked.str("refresh_token"))
	used := e.login("other")
	e.refresh("other", used.str("refresh_token"))
	for name, tok := range map[string]string{
		"expired": expired, "revoked": revoked.str("access_token"), "used refresh token": used.str("refresh_token"),
		"unknown": "AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", "garbage": "x",
	} {
		if r := e.introspect("other", tok); r.status != 200 || strings.TrimSpace(r.body) != `{"active":false}` {
			t.Errorf("%s: %d %s", name, r.status, r.body)
		}
	}
	assertOAuthError(t, e.post(DefaultIntrospectionPath, "", url.Values{"token": {live.str("access_token")}}), 401, "invalid_client")
	assertOAuthError(t, e.post(DefaultIntrospectionPath, basic("other", "nope"), url.Values{"token": {live.str("access_token")}}), 401, "invalid_client")
}

type metadataDoc struct {
	Issuer                 string   `json:"issuer"`
	TokenEndpoint          string   `json:"token_endpoint"`
	RevocationEndpoint     string   `json:"revocation_endpoint"`
	IntrospectionEndpoint  string   `json:"introspection_endpoint"`
	GrantTypesSupported    []string `json:"grant_types_supported"`
	ResponseTypesSupported []string `json:"response_types_supported"`
	ScopesSupported        []string `json:"scopes_supported"`
	TokenAuthMethods       []string `json:"token_endpoint_auth_methods_supported"`
}

func (e *env) metadata(path string) metadataDoc {
	e.t.Helper()
	r := e.get(path, "")
	if r.status != 200 || r.header.Get("Content-Type") != "application/json" {
		e.t.Fatalf("%s: %d %q %s", path, r.status, r.header.Get("Content-Type"), r.body)
	}
	var m metadataDoc
	dec := json.NewDecoder(strings.NewReader(r.body))
	if err := dec.Decode(&m); err != nil {
		e.t.Fatal(err)
	}
	return m
}

func TestMetadataListsEndpointsThatAnswer(t *testing.T) {
	e := startCaddy(t, testConfig{})
	m := e.metadata("/.well-known/oauth-authorization-server")
	if m.Issuer != baseURL || m.TokenEndpoint != baseURL+DefaultTokenPath || m.RevocationEndpoint != baseURL+DefaultRevocationPath ||
		m.IntrospectionEndpoint != baseURL+DefaultIntrospectionPath {
		t.Fatalf("endpoints: %+v", m)
	}
	if strings.Join(m.GrantTypesSupported, " ") != "password refresh_token client_credentials authorization_code" ||
		strings.Join(m.TokenAuthMethods, " ") != "client_secret_basic none" || strings.Join(m.ResponseTypesSupported, " ") != "code" ||
		strings.Join(m.ScopesSupported, " ") != "jobs read write" {
		t.Fatalf("metadata: %+v", m)
	}
	// Each listed endpoint answers (here: refuses an anonymous caller),
	// rather than passing the request on to the site's 404.
	for _, u := range []string{m.TokenEndpoint, m.RevocationEndpoint, m.IntrospectionEndpoint} {
		path := strings.TrimPrefix(u, baseURL)
		assertOAuthError(t, e.post(path, "", aliceForm), 401, "invalid_client")
	}
	if r := e.post("/.well-known/oauth-authorization-server", "", nil); r.status != 405 || r.header.Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST to the metadata: %d %v", r.status, r.header)
	}
}

func TestEndpointsCanBeMovedOrSwitchedOff(t *testing.T) {
	e := startCaddy(t, testConfig{})
	m := e.metadata("/moved/meta")
	if m.Issuer != baseURL+"/moved" || m.TokenEndpoint != baseURL+"/moved/token" || m.RevocationEndpoint != baseURL+"/moved/logout" {
		t.Fatalf("moved: %+v", m)
	}
	if m.IntrospectionEndpoint != "" {
		t.Fatalf("a switched-off endpoint is listed: %+v", m)
	}
	tok := e.post("/moved/token", basic("other", "other-secret"), aliceForm)
	if tok.status != 200 {
		t.Fatalf("moved token endpoint: %d %s", tok.status, tok.body)
	}
	if r := e.post("/moved/logout", basic("other", "other-secret"), url.Values{"token": {tok.str("refresh_token")}}); r.status != 200 {
		t.Fatalf("moved revocation: %d", r.status)
	}
	if r := e.get("/api/x", tok.str("access_token")); r.status != 401 {
		t.Fatalf("after the moved revocation: %d", r.status)
	}
	// Switched off: the request passes on, here to the site's 404.
	if r := e.post("/moved/introspect", basic("other", "other-secret"), url.Values{"token": {"x"}}); r.status != http.StatusNotFound {
		t.Fatalf("switched-off introspection: %d %s", r.status, r.body)
	}
	// An issuer that only introspects needs no auth_check.
	live := e.login("app")
	r := e.post("/inspect/introspect", basic("other", "other-secret"), url.Values{"token": {live.str("access_token")}})
	if r.status != 200 || r.json["active"] != true {
		t.Fatalf("introspection-only issuer: %d %s", r.status, r.body)
	}
	if r := e.post("/inspect/token", basic("other", "other-secret"), aliceForm); r.status != http.StatusNotFound {
		t.Fatalf("its switched-off token endpoint: %d", r.status)
	}
}

func TestMetadataRequiresHTTPS(t *testing.T) {
	startCaddy(t, testConfig{})
	resp, err := plainClient.Get("http://127.0.0.1:9082/.well-known/oauth-authorization-server")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	// :9082 has an oauth2_token with the default paths and require_ssl.
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("metadata over plain HTTP: %d", resp.StatusCode)
	}
}
