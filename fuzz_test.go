package oauth2provider

import "testing"

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
