package oauth2provider

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

// The parsers of untrusted input. Their seed corpus runs in the normal
// suite; `go test -fuzz FuzzX` explores further.

func FuzzParseTokenForm(f *testing.F) {
	for _, seed := range []string{
		"grant_type=password&username=alice&password=wonderland",
		"grant_type=refresh_token&refresh_token=a.b&user_id=1234",
		"a=1&a=2", "a=%zz", "a;b", "=", "&&&", "scope=read+write", "x=%FF", "x=%C3%A9",
		strings.Repeat("k=v&", 1000),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		form, err := parseTokenForm(body)
		if err != nil {
			var oe *OAuthError
			if !errors.As(err, &oe) || oe.Status != http.StatusBadRequest || oe.Code != "invalid_request" {
				t.Fatalf("error %v is not a 400 invalid_request", err)
			}
			return
		}
		for name, values := range form {
			if len(values) != 1 {
				t.Fatalf("%q has %d values", name, len(values))
			}
			if !utf8.ValidString(name) || !utf8.ValidString(values[0]) {
				t.Fatalf("accepted invalid UTF-8 in %q", name)
			}
		}
		// What was accepted survives a round trip.
		again, err := parseTokenForm([]byte(form.Encode()))
		if err != nil || again.Encode() != form.Encode() {
			t.Fatalf("round trip: %v %q != %q", err, again.Encode(), form.Encode())
		}
	})
}

func FuzzBasicCredentials(f *testing.F) {
	enc := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, seed := range []string{
		enc("app:secret"), enc("team%3Aapp+%C3%BC:pa+ss%2Bw%C3%B6rd%25"), enc("a%zz:b"), enc(":"), enc("nocolon"),
		"Basic", "Basic ", "Basic !!!", "Bearer abc", "basic " + base64.StdEncoding.EncodeToString([]byte("a:b")), "",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		r := &http.Request{Header: http.Header{}}
		if header != "" {
			r.Header.Set("Authorization", header)
		}
		id, secret, err := basicCredentials(r)
		if err != nil {
			var oe *OAuthError
			if !errors.As(err, &oe) || oe.Status != http.StatusUnauthorized || oe.Code != "invalid_client" {
				t.Fatalf("error %v is not a 401 invalid_client", err)
			}
			// The description is one of a few fixed texts: it never
			// echoes what was sent.
			if !strings.Contains(basicErrorTexts, "|"+oe.Description+"|") {
				t.Fatalf("unexpected description %q", oe.Description)
			}
			return
		}
		if id == "" {
			t.Fatal("accepted an empty client id")
		}
		// Encoding what was decoded, as a client library does, gives
		// back the same credentials.
		r.Header.Set("Authorization", basic(id, secret))
		id2, secret2, err := basicCredentials(r)
		if err != nil || id2 != id || secret2 != secret {
			t.Fatalf("round trip of %q:%q gave %q:%q, %v", id, secret, id2, secret2, err)
		}
	})
}

const basicErrorTexts = "|client authentication is required (HTTP Basic)|more than one Authorization header|" +
	"malformed Basic Authorization header|malformed client id encoding|malformed client secret encoding|client id is empty|"

func FuzzBearerToken(f *testing.F) {
	for _, seed := range []string{
		"Bearer abc", "bearer abc", "Bearer  abc", "Bearer abc def", "Bearer", "Bearer ", "Bearer a=b",
		"Bearer abc==", "Basic abc", "Bearer a,b", "Bearer \x00", "",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		h := http.Header{}
		if header != "" {
			h.Set("Authorization", header)
		}
		tok, err := bearerToken(h)
		if err != nil {
			var be *bearerError
			if !errors.As(err, &be) || (be.status != 400 && be.status != 401) {
				t.Fatalf("error %v", err)
			}
			return
		}
		if !validB64Token(tok) || strings.ContainsAny(tok, " ,\"\\") {
			t.Fatalf("accepted token %q", tok)
		}
	})
}

func FuzzParseScope(f *testing.F) {
	for _, seed := range []string{"read write", "  read  ", `a"b`, "a\\b", "é", "read read", ""} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		scopes, ok := parseScope(s)
		if !ok {
			return
		}
		for i, sc := range scopes {
			if !validScopeToken(sc) {
				t.Fatalf("accepted scope token %q", sc)
			}
			for _, other := range scopes[:i] {
				if other == sc {
					t.Fatalf("repeated scope %q", sc)
				}
			}
		}
		if again, ok := parseScope(strings.Join(scopes, " ")); !ok || !sameScope(again, scopes) {
			t.Fatalf("round trip of %q", s)
		}
	})
}

func FuzzCheckQuery(f *testing.F) {
	for _, seed := range []string{"", "a=1", "password=x", "%zz", "x=1&grant_type=password", "Password=x"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		err := checkQuery(raw)
		q, perr := url.ParseQuery(raw)
		if perr != nil {
			if err == nil {
				t.Fatalf("accepted malformed query %q", raw)
			}
			return
		}
		for _, name := range queryForbidden {
			if q.Has(name) && err == nil {
				t.Fatalf("accepted %s in the query %q", name, raw)
			}
		}
	})
}

func FuzzParseSecretHash(f *testing.F) {
	salt := []byte("0123456789abcdef")
	h, _ := hashSecretCost("s", salt, 10)
	for _, seed := range []string{h, "$scrypt$ln=99,r=8,p=1$AAAAAAAAAAA$AAAA", "$scrypt$$$", "plain", "$scrypt$ln=10$a$b"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		parsed, err := parseSecretHash(s)
		if err != nil {
			return
		}
		if parsed.logN > 20 || parsed.r > 32 || parsed.p > 16 || len(parsed.key) < 32 {
			t.Fatalf("accepted a hash out of bounds: %q", s)
		}
	})
}
