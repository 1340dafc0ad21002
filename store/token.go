package store

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"time"
)

// A token is "<family>.<secret>": the family id (16 random bytes) and a
// secret (32 random bytes), both unpadded base64url. Carrying the family
// in the token lets a store find the family of a presented token without
// an index, and lets a family be revoked as one key range. Only the
// SHA-256 digest of the whole token is stored.
const (
	familyIDLen = 16
	secretLen   = 32

	familyTextLen = 22 // base64.RawURLEncoding.EncodedLen(familyIDLen)
	secretTextLen = 43 // base64.RawURLEncoding.EncodedLen(secretLen)
	tokenTextLen  = familyTextLen + 1 + secretTextLen

	// TokenKeyLen is the length of a TokenKey.
	TokenKeyLen = familyIDLen + sha256.Size
)

// FamilyID names a token family: the tokens that descend from one grant
// through refresh rotation.
type FamilyID [familyIDLen]byte

// String returns the family id as it appears in a token.
func (f FamilyID) String() string { return base64.RawURLEncoding.EncodeToString(f[:]) }

// TokenKey is how a token is stored: its family id followed by the
// SHA-256 digest of the whole token.
type TokenKey [TokenKeyLen]byte

// Family returns the family part of the key.
func (k TokenKey) Family() FamilyID { return FamilyID(k[:familyIDLen]) }

// NewFamilyID returns a random family id.
//
// Like a UUIDv7, it starts with the time in milliseconds (6 bytes) and
// ends with 10 random bytes: new families then sit next to each other in
// the store's B-tree, so a commit of many grants writes a few pages
// rather than one page per grant, and the families of one client are
// listed in order. The time it gives away is when the user logged in;
// the token's secret part alone carries its 256 bits.
func NewFamilyID() FamilyID {
	var f FamilyID
	binary.BigEndian.PutUint64(f[:8], uint64(time.Now().UnixMilli())<<16)
	_, _ = rand.Read(f[6:]) // crypto/rand.Read never fails
	return f
}

// NewToken returns a new random token of family f and its key.
func NewToken(f FamilyID) (string, TokenKey) {
	var secret [secretLen]byte
	_, _ = rand.Read(secret[:])
	buf := make([]byte, tokenTextLen)
	base64.RawURLEncoding.Encode(buf, f[:])
	buf[familyTextLen] = '.'
	base64.RawURLEncoding.Encode(buf[familyTextLen+1:], secret[:])
	tok := string(buf)
	return tok, keyOf(f, tok)
}

// ParseToken checks the shape of a presented token and returns its key.
// It reports false for anything that this package cannot have issued.
func ParseToken(tok string) (TokenKey, bool) {
	if len(tok) != tokenTextLen || tok[familyTextLen] != '.' {
		return TokenKey{}, false
	}
	// Work on a copy on the stack: the gate parses a token per request,
	// and converting the string would allocate.
	var text [tokenTextLen]byte
	copy(text[:], tok)
	var f FamilyID
	if n, err := strictBase64.Decode(f[:], text[:familyTextLen]); err != nil || n != familyIDLen {
		return TokenKey{}, false
	}
	var secret [secretLen]byte
	if n, err := strictBase64.Decode(secret[:], text[familyTextLen+1:]); err != nil || n != secretLen {
		return TokenKey{}, false
	}
	return keyOfText(f, text[:]), true
}

var strictBase64 = base64.RawURLEncoding.Strict()

func keyOf(f FamilyID, tok string) TokenKey { return keyOfText(f, []byte(tok)) }

func keyOfText(f FamilyID, text []byte) TokenKey {
	var k TokenKey
	copy(k[:familyIDLen], f[:])
	d := sha256.Sum256(text)
	copy(k[familyIDLen:], d[:])
	return k
}
