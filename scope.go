package oauth2provider

import "slices"

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
