package oauth2provider

import (
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"
)

// Secret hashes come from the config, but a hostile or mistyped one must
// not cost unbounded scrypt work. The request parsers' fuzz targets are
// in internal/wire, whose small binary fuzzes fast.

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
		if 128<<parsed.logN*parsed.r > maxScryptMemory || parsed.p > 4 || len(parsed.key) < 32 {
			t.Fatalf("accepted a hash out of bounds: %q", s)
		}
	})
}

// The authorization endpoint's parsers of what a browser sends.

func FuzzOpenLoginState(f *testing.F) {
	te := &TokenEndpoint{stateKey: []byte("0123456789abcdef0123456789abcdef")}
	good := te.sealState(loginState{ClientID: "web", Challenge: "c", Exp: 1 << 40, Nonce: "n"})
	for _, seed := range []string{good, good[:len(good)-1] + "A", "", ".", "a.b", "%%%.%%%", good + "." + good} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		// Without the key nothing new can be forged: whatever opens is the
		// state that was sealed.
		if st, ok := te.openState(s, time.Unix(0, 0)); ok && (st.ClientID != "web" || st.Nonce != "n") {
			t.Fatalf("opened a state that was never sealed: %q", s)
		}
	})
}

func FuzzMatchRedirectURI(f *testing.F) {
	reg := []string{"http://127.0.0.1/cb", "https://app.example/cb?x=1", "com.example.app:/cb"}
	for _, seed := range []string{"http://127.0.0.1:1/cb", "https://app.example/cb?x=1", "http://evil@127.0.0.1/cb",
		"http://127.0.0.1/cb#f", "http://127.0.0.1.evil.example/cb", "com.example.app:/cb", "%zz", ""} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, given string) {
		if !matchRedirectURI(reg, given) {
			return
		}
		u, err := url.Parse(given)
		if err != nil {
			t.Fatalf("matched an unparseable %q", given)
		}
		// A match is a registered URI, or the loopback one on another port.
		if !slices.Contains(reg, given) && (u.Scheme != "http" || u.Hostname() != "127.0.0.1" || u.Path != "/cb" || u.User != nil || u.RawQuery != "" || u.Fragment != "") {
			t.Fatalf("matched %q", given)
		}
	})
}

func FuzzVerifierAndChallenge(f *testing.F) {
	for _, seed := range []string{"dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk", strings.Repeat("a", 42), strings.Repeat("~", 129), "é"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if validVerifier(s) && (len(s) < 43 || len(s) > 128 || strings.ContainsAny(s, " +/=%")) {
			t.Fatalf("accepted verifier %q", s)
		}
		if validChallenge(s) && len(s) != 43 {
			t.Fatalf("accepted challenge %q", s)
		}
	})
}
