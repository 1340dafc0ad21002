package store

import (
	"strings"
	"testing"
)

func FuzzParseToken(f *testing.F) {
	tok, _ := NewToken(NewFamilyID())
	for _, seed := range []string{tok, tok[:65], tok + "=", strings.Repeat("A", 22) + "." + strings.Repeat("A", 43), "", ".", "a.b"} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		key, ok := ParseToken(s)
		if !ok {
			return
		}
		// Only the canonical text of a family and a secret parses, and
		// its key carries its family.
		if len(s) != tokenTextLen || key.Family().String() != s[:familyTextLen] {
			t.Fatalf("accepted %q", s)
		}
		if again, _ := ParseToken(s); again != key {
			t.Fatal("the key is not a function of the token")
		}
	})
}

func FuzzDecodeRecord(f *testing.F) {
	r := tokenRecord{kind: kindAccess, issuedAt: 1, expiresAt: 2, clientID: "c", userID: []byte("1"), scope: "s"}
	f.Add(r.encode())
	f.Add([]byte{recordVersion, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := decodeRecord(b)
		if err != nil {
			return
		}
		if _, err := decodeRecord(rec.encode()); err != nil {
			t.Fatalf("re-encoding a decoded record: %v", err)
		}
	})
}
