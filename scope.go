package oauth2provider

import (
	"slices"
	"strings"
)

// validScopeToken reports whether s is a scope-token of RFC 6749 §3.3:
// printable ASCII except space, '"' and '\'.
func validScopeToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == '\\' {
			return false
		}
	}
	return true
}

// parseScope splits a scope parameter into its tokens, in order and
// without repeats. ok is false if a token is not a valid scope-token.
func parseScope(s string) (scopes []string, ok bool) {
	for _, tok := range strings.Split(s, " ") {
		if tok == "" {
			continue // tolerate repeated spaces
		}
		if !validScopeToken(tok) {
			return nil, false
		}
		if !slices.Contains(scopes, tok) {
			scopes = append(scopes, tok)
		}
	}
	return scopes, true
}

// sameScope reports whether a and b hold the same scopes in any order.
func sameScope(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for _, s := range a {
		if !slices.Contains(b, s) {
			return false
		}
	}
	return true
}

// subset reports whether every scope of a is in b, and if not, the first
// that is not.
func subset(a, b []string) (string, bool) {
	for _, s := range a {
		if !slices.Contains(b, s) {
			return s, false
		}
	}
	return "", true
}

// intersect returns the scopes of a that are also in b, in a's order.
func intersect(a, b []string) []string {
	var out []string
	for _, s := range a {
		if slices.Contains(b, s) {
			out = append(out, s)
		}
	}
	return out
}
