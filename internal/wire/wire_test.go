package wire

import (
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestParseFormRefusesRepeatsAndNonUTF8(t *testing.T) {
	for body, want := range map[string]error{
		"grant_type=password&username=a": nil,
		"a=1&a=2":                        ErrRepeatedParam,
		"a=%FF":                          ErrNotUTF8,
		"%FF=a":                          ErrNotUTF8,
		"a=%zz":                          ErrMalformedForm,
		"a=1;b=2":                        ErrMalformedForm,
	} {
		if _, err := ParseForm([]byte(body)); !errors.Is(err, want) {
			t.Errorf("%q: err = %v, want %v", body, err, want)
		}
	}
}

func TestBasicCredentialsDecodesRFC6749Encoding(t *testing.T) {
	h := http.Header{"Authorization": {EncodeBasic("team:app ü", "pa ss+wörd%/:")}}
	id, secret, err := BasicCredentials(h)
	if err != nil || id != "team:app ü" || secret != "pa ss+wörd%/:" {
		t.Fatalf("%q %q %v", id, secret, err)
	}
	// What an RFC 7617-only client sends for "a+b": the '+' becomes a space.
	h.Set("Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte("a+b:c")))
	if id, _, _ := BasicCredentials(h); id != "a b" {
		t.Fatalf("id = %q", id)
	}
}

func TestBearerToken(t *testing.T) {
	for header, want := range map[string]error{
		"Bearer abc.DEF-_~+/=": nil,
		"bearer abc":           nil,
		"Bearer  abc":          nil,
		"Basic abc":            ErrNoBearer,
		"Bearerabc":            ErrNoBearer,
		"Bearer":               ErrMalformedBearer,
		"Bearer a b":           ErrMalformedBearer,
		"Bearer a=b":           ErrMalformedBearer,
		"Bearer ===":           ErrMalformedBearer,
	} {
		if _, err := BearerToken(http.Header{"Authorization": {header}}); !errors.Is(err, want) {
			t.Errorf("%q: err = %v, want %v", header, err, want)
		}
	}
	if _, err := BearerToken(http.Header{}); !errors.Is(err, ErrNoBearer) {
		t.Errorf("no header: %v", err)
	}
	if _, err := BearerToken(http.Header{"Authorization": {"Bearer a", "Bearer b"}}); !errors.Is(err, ErrTwoAuthorizations) {
		t.Errorf("two headers: %v", err)
	}
}

func TestParseScope(t *testing.T) {
	got, ok := ParseScope("  read write read ")
	if !ok || !slices.Equal(got, []string{"read", "write"}) {
		t.Fatalf("%v %v", got, ok)
	}
	for _, bad := range []string{`a"b`, `a\b`, "é", "a\tb"} {
		if _, ok := ParseScope(bad); ok {
			t.Errorf("accepted %q", bad)
		}
	}
}

func TestTruncateKeepsUTF8(t *testing.T) {
	s := strings.Repeat("é", 40) // 80 bytes
	if got := Truncate(s); !utf8.ValidString(got) || len(got) > 64+len("…") {
		t.Fatalf("%q", got)
	}
	if Truncate("short") != "short" {
		t.Fatal("short value changed")
	}
}

// The fuzz targets. Their seed corpus runs in the normal suite;
// `go test -fuzz FuzzX ./internal/wire` explores further.

func FuzzParseForm(f *testing.F) {
	for _, seed := range []string{
		"grant_type=password&username=alice&password=wonderland",
		"grant_type=refresh_token&refresh_token=a.b&user_id=1234",
		"a=1&a=2", "a=%zz", "a;b", "=", "&&&", "scope=read+write", "x=%FF", "x=%C3%A9",
		strings.Repeat("k=v&", 100),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		form, err := ParseForm(body)
		if err != nil {
			if !errors.Is(err, ErrMalformedForm) && !errors.Is(err, ErrRepeatedParam) && !errors.Is(err, ErrNotUTF8) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		for name, values := range form {
			if len(values) != 1 || !utf8.ValidString(name) || !utf8.ValidString(values[0]) {
				t.Fatalf("accepted %q = %q", name, values)
			}
		}
		// What was accepted survives a round trip.
		again, err := ParseForm([]byte(form.Encode()))
		if err != nil || again.Encode() != form.Encode() {
			t.Fatalf("round trip: %v %q != %q", err, again.Encode(), form.Encode())
		}
	})
}

func FuzzForbiddenQueryParam(f *testing.F) {
	names := []string{"password", "grant_type"}
	for _, seed := range []string{"", "a=1", "password=x", "%zz", "x=1&grant_type=password", "Password=x"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		name, err := ForbiddenQueryParam(raw, names)
		q, perr := url.ParseQuery(raw)
		switch {
		case perr != nil:
			if err == nil && raw != "" {
				t.Fatalf("accepted malformed query %q", raw)
			}
		case name == "":
			for _, n := range names {
				if q.Has(n) {
					t.Fatalf("missed %s in %q", n, raw)
				}
			}
		case !q.Has(name):
			t.Fatalf("reported %s, which %q does not hold", name, raw)
		}
	})
}

var basicErrors = []error{ErrNoCredentials, ErrTwoAuthorizations, ErrMalformedBasic,
	ErrMalformedClientID, ErrMalformedSecret, ErrEmptyClientID}

func FuzzBasicCredentials(f *testing.F) {
	enc := func(s string) string { return "Basic " + base64.StdEncoding.EncodeToString([]byte(s)) }
	for _, seed := range []string{
		enc("app:secret"), enc("team%3Aapp+%C3%BC:pa+ss%2Bw%C3%B6rd%25"), enc("a%zz:b"), enc(":"), enc("nocolon"),
		"Basic", "Basic ", "Basic !!!", "Bearer abc", "basic " + base64.StdEncoding.EncodeToString([]byte("a:b")), "",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, header string) {
		h := http.Header{}
		if header != "" {
			h.Set("Authorization", header)
		}
		id, secret, err := BasicCredentials(h)
		if err != nil {
			// The error is one of a few fixed values: it never echoes
			// what was sent.
			if !slices.Contains(basicErrors, err) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if id == "" {
			t.Fatal("accepted an empty client id")
		}
		// Encoding what was decoded, as a client library does, gives
		// back the same credentials.
		h.Set("Authorization", EncodeBasic(id, secret))
		id2, secret2, err := BasicCredentials(h)
		if err != nil || id2 != id || secret2 != secret {
			t.Fatalf("round trip of %q:%q gave %q:%q, %v", id, secret, id2, secret2, err)
		}
	})
}

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
		tok, err := BearerToken(h)
		if err != nil {
			if !errors.Is(err, ErrNoBearer) && !errors.Is(err, ErrMalformedBearer) {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if !ValidB64Token(tok) || strings.ContainsAny(tok, " ,\"\\") || !strings.HasSuffix(header, tok) {
			t.Fatalf("accepted token %q of %q", tok, header)
		}
	})
}

func FuzzParseScope(f *testing.F) {
	for _, seed := range []string{"read write", "  read  ", `a"b`, "a\\b", "é", "read read", ""} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		scopes, ok := ParseScope(s)
		if !ok {
			return
		}
		for i, sc := range scopes {
			if !ValidScopeToken(sc) || slices.Contains(scopes[:i], sc) {
				t.Fatalf("scope %q of %q", sc, s)
			}
		}
		if again, ok := ParseScope(strings.Join(scopes, " ")); !ok || !slices.Equal(again, scopes) {
			t.Fatalf("round trip of %q", s)
		}
	})
}
