package authcheck

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/caddyserver/caddy/v2"
)

func provisioned(t *testing.T, h *HTTP) *HTTP {
	t.Helper()
	ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
	t.Cleanup(cancel)
	if err := h.Provision(ctx); err != nil {
		t.Fatal(err)
	}
	return h
}

func upstream(t *testing.T, handler http.HandlerFunc) string {
	t.Helper()
	srv := httptest.NewServer(handler)
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestCredentialsGoInABasicHeader(t *testing.T) {
	var gotUser, gotPass, gotKey, gotMethod, gotQuery string
	url := upstream(t, func(w http.ResponseWriter, r *http.Request) {
		gotUser, gotPass, _ = r.BasicAuth()
		gotKey, gotMethod, gotQuery = r.Header.Get("X-Api-Key"), r.Method, r.URL.RawQuery
		w.Write([]byte(`{"user_id": "u-1"}`))
	})
	h := provisioned(t, &HTTP{URL: url, HeadersUp: http.Header{"X-Api-Key": {"k1"}}})
	id, err := h.CheckAuth(context.Background(), "alice", "pa:ss word")
	if err != nil {
		t.Fatal(err)
	}
	if string(id) != `"u-1"` || gotUser != "alice" || gotPass != "pa:ss word" || gotKey != "k1" || gotMethod != "POST" || gotQuery != "" {
		t.Fatalf("id=%s user=%q pass=%q key=%q method=%s query=%q", id, gotUser, gotPass, gotKey, gotMethod, gotQuery)
	}
}

func TestUserIDKeepsItsJSONType(t *testing.T) {
	for body, want := range map[string]string{
		`{"user_id": 1234}`:          `1234`,
		`{"user_id":"1234"}`:         `"1234"`,
		`{"id": 7, "user_id": -2.5}`: `-2.5`,
		`{"other": 1}`:               `"alice"`,
		`{"user_id": null}`:          `"alice"`,
		``:                           `"alice"`,
		`OK`:                         `"alice"`,
	} {
		url := upstream(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(body)) })
		id, err := provisioned(t, &HTTP{URL: url}).CheckAuth(context.Background(), "alice", "pw")
		if err != nil || string(id) != want {
			t.Errorf("body %q: id=%s err=%v, want %s", body, id, err, want)
		}
	}
}

func TestUserIDFieldIsConfigurable(t *testing.T) {
	url := upstream(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(`{"user_id":1,"uid":2}`)) })
	id, err := provisioned(t, &HTTP{URL: url, UserIDField: "uid"}).CheckAuth(context.Background(), "a", "b")
	if err != nil || string(id) != "2" {
		t.Fatalf("id=%s err=%v", id, err)
	}
}

func TestUserIDThatIsNotAStringOrNumberIsUnavailable(t *testing.T) {
	for _, body := range []string{`{"user_id": true}`, `{"user_id": {}}`, `{"user_id": ""}`, `{"user_id": 12`, `{"user_id": 1,}`,
		`{"user_id": 1, "pad": "` + strings.Repeat("x", maxBody) + `"}`} {
		url := upstream(t, func(w http.ResponseWriter, r *http.Request) { w.Write([]byte(body)) })
		if _, err := provisioned(t, &HTTP{URL: url}).CheckAuth(context.Background(), "a", "b"); !errors.Is(err, ErrUnavailable) {
			t.Errorf("body %s: err = %v", body, err)
		}
	}
}

func TestStatusDecidesTheAnswer(t *testing.T) {
	for status, want := range map[int]error{
		401: ErrInvalidCredentials, 403: ErrInvalidCredentials,
		500: ErrUnavailable, 502: ErrUnavailable, 404: ErrUnavailable, 302: ErrUnavailable, 429: ErrUnavailable,
	} {
		url := upstream(t, func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Location", "http://elsewhere.invalid/")
			w.WriteHeader(status)
		})
		_, err := provisioned(t, &HTTP{URL: url}).CheckAuth(context.Background(), "alice", "secret-pw")
		if !errors.Is(err, want) {
			t.Errorf("status %d: err = %v, want %v", status, err, want)
		}
		if err != nil && strings.Contains(err.Error(), "secret-pw") {
			t.Errorf("error contains the password: %v", err)
		}
	}
}

func TestErrorsDoNotNameTheQueryOfTheURL(t *testing.T) {
	url := upstream(t, func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(500) })
	_, err := provisioned(t, &HTTP{URL: url + "/check?key=s3cr3t"}).CheckAuth(context.Background(), "a", "b")
	if !errors.Is(err, ErrUnavailable) || strings.Contains(err.Error(), "s3cr3t") || !strings.Contains(err.Error(), "/check") {
		t.Fatalf("err = %v", err)
	}
	_, err = provisioned(t, &HTTP{URL: refusedURL(t) + "/check?key=s3cr3t"}).CheckAuth(context.Background(), "a", "b")
	if !errors.Is(err, ErrUnavailable) || strings.Contains(err.Error(), "s3cr3t") {
		t.Fatalf("err = %v", err)
	}
}

func refusedURL(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return "http://" + l.Addr().String()
}

func TestHangingUpstreamTimesOut(t *testing.T) {
	release := make(chan struct{})
	url := upstream(t, func(w http.ResponseWriter, r *http.Request) { <-release })
	defer close(release)
	h := provisioned(t, &HTTP{URL: url, Timeout: caddy.Duration(200 * time.Millisecond)})
	start := time.Now()
	_, err := h.CheckAuth(context.Background(), "a", "b")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("took %v", d)
	}
}

func TestRefusedConnectionIsUnavailable(t *testing.T) {
	_, err := provisioned(t, &HTTP{URL: refusedURL(t) + "/check"}).CheckAuth(context.Background(), "a", "b")
	if !errors.Is(err, ErrUnavailable) {
		t.Fatalf("err = %v", err)
	}
}

func TestUsernameWithAColonIsInvalid(t *testing.T) {
	called := false
	url := upstream(t, func(w http.ResponseWriter, r *http.Request) { called = true })
	_, err := provisioned(t, &HTTP{URL: url}).CheckAuth(context.Background(), "a:b", "c")
	if !errors.Is(err, ErrInvalidCredentials) || called {
		t.Fatalf("err = %v, called = %v", err, called)
	}
}

func TestHeaderPlaceholdersAreReplaced(t *testing.T) {
	var got string
	url := upstream(t, func(w http.ResponseWriter, r *http.Request) { got = r.Header.Get("X-Key") })
	t.Setenv("OAUTH2_TEST_KEY", "from-env")
	h := provisioned(t, &HTTP{URL: url, HeadersUp: http.Header{"X-Key": {"{env.OAUTH2_TEST_KEY}"}}})
	if _, err := h.CheckAuth(context.Background(), "a", "b"); err != nil || got != "from-env" {
		t.Fatalf("header = %q, err = %v", got, err)
	}
}

func TestBadConfigIsRefused(t *testing.T) {
	for _, h := range []*HTTP{
		{},
		{URL: "ftp://x/"},
		{URL: "/relative"},
		{URL: "http://user:pw@host/"},
		{URL: "http://host/", Timeout: -1},
	} {
		ctx, cancel := caddy.NewContext(caddy.Context{Context: context.Background()})
		if err := h.Provision(ctx); err == nil {
			t.Errorf("%+v: accepted", h)
		}
		cancel()
	}
}
