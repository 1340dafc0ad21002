package store

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"time"

	bolt "go.etcd.io/bbolt"
)

// AuthCode is an authorization code (RFC 6749 §4.1) as the store keeps
// it, under the SHA-256 digest of the code. It is written only after the
// user has logged in, lives a minute or so, and is kept as a used
// tombstone for a day after its first redemption, so a second one is
// recognised and revokes what the first issued (RFC 6749 §4.1.2).
type AuthCode struct {
	ClientID     string          `json:"client_id"`
	StaticClient bool            `json:"static_client,omitempty"`
	UserID       json.RawMessage `json:"user_id,omitempty"`
	Scope        string          `json:"scope,omitempty"`
	// RedirectURI is the one sent to the authorization endpoint, or ""
	// if none was (the client has exactly one registered).
	RedirectURI string `json:"redirect_uri,omitempty"`
	// Requested is the scope the client asked for ("" for none); Scope is
	// what was granted.
	Requested string `json:"requested_scope,omitempty"`
	// Challenge is the PKCE S256 code challenge.
	Challenge string    `json:"code_challenge"`
	Family    FamilyID  `json:"family"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
	Used      bool      `json:"used,omitempty"`
}

// codeTombstoneLife is how long a used code is kept to recognise reuse.
const codeTombstoneLife = 24 * time.Hour

var bucketCodes = []byte("authcodes")

func codeKey(code string) []byte {
	d := sha256.Sum256([]byte(code))
	return d[:]
}

// CodeCheck decides, inside the store's transaction, whether a presented
// code may be redeemed (client, redirect URI, PKCE verifier), and what
// the tokens are made of. It is called before the code's use is looked
// at, so a caller without the verifier cannot revoke the user's tokens
// by replaying a code. An error that wraps ErrBurnCode (a wrong redirect
// URI or verifier) deletes an unused code; any other refusal, such as
// another client's, leaves it, so nobody can burn someone else's code.
// It may be called more than once.
type CodeCheck func(AuthCode) (Grant, error)

// ErrBurnCode marks a CodeCheck refusal that spends the code.
var ErrBurnCode = errors.New("store: the code is spent")

// CreateCode stores a new authorization code and returns it: 32 random
// bytes, unpadded base64url.
func (b *Bolt) CreateCode(ctx context.Context, c AuthCode) (string, error) {
	raw := make([]byte, 32)
	_, _ = rand.Read(raw)
	code := base64.RawURLEncoding.EncodeToString(raw)
	c.Family = NewFamilyID()
	v, err := json.Marshal(c)
	if err != nil {
		return "", err
	}
	err = b.batch(func(tx *wtx) (error, error) {
		return nil, tx.Bucket(bucketCodes).Put(codeKey(code), v)
	})
	if err != nil {
		return "", err
	}
	return code, nil
}

// RedeemCode exchanges a code for tokens, once. An unknown or expired
// code is ErrNotFound; a check failure deletes the code and is returned;
// a second redemption revokes the tokens of the first and returns
// ErrTokenReused. Concurrent redemptions of one code have one winner.
func (b *Bolt) RedeemCode(ctx context.Context, code string, now time.Time, check CodeCheck) (TokenPair, error) {
	key := codeKey(code)
	var pair TokenPair
	err := b.batch(func(tx *wtx) (error, error) {
		codes := tx.Bucket(bucketCodes)
		v := codes.Get(key)
		if v == nil {
			return ErrNotFound, nil
		}
		var c AuthCode
		if err := json.Unmarshal(v, &c); err != nil {
			return nil, err
		}
		if !c.Used && !now.Before(c.ExpiresAt) {
			return ErrNotFound, nil
		}
		g, err := check(c)
		switch {
		case err != nil && !c.Used && errors.Is(err, ErrBurnCode):
			return err, codes.Delete(key)
		case err != nil:
			// A used code stays, so its reuse is still recognised.
			return err, nil
		}
		if c.Used {
			return ErrTokenReused, revokeFamily(tx, c.Family)
		}
		if !g.StaticClient && tx.Bucket(bucketClients).Get([]byte(g.ClientID)) == nil {
			return ErrNotFound, nil // the client was revoked meanwhile
		}
		c.Used = true
		c.ExpiresAt = now.Add(codeTombstoneLife)
		if v, err = json.Marshal(c); err != nil {
			return nil, err
		}
		if err := codes.Put(key, v); err != nil {
			return nil, err
		}
		if err := tx.Bucket(bucketClientFamilies).Put(clientFamilyKey(g.ClientID, c.Family), nil); err != nil {
			return nil, err
		}
		var records []keyedRecord
		pair, records = newPair(c.Family, g, now)
		return nil, putRecords(tx, records)
	})
	if err != nil {
		return TokenPair{}, err
	}
	return pair, nil
}

// deleteExpiredCodes removes codes (and tombstones) past their time.
func deleteExpiredCodes(tx *bolt.Tx, now time.Time) error {
	codes := tx.Bucket(bucketCodes)
	var old [][]byte
	err := codes.ForEach(func(k, v []byte) error {
		var c AuthCode
		if json.Unmarshal(v, &c) != nil || !now.Before(c.ExpiresAt) {
			old = append(old, append([]byte(nil), k...))
		}
		return nil
	})
	if err != nil {
		return err
	}
	for _, k := range old {
		if err := codes.Delete(k); err != nil {
			return err
		}
	}
	return nil
}
