package store

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"time"
)

// tokenRecord is a token as the bbolt store keeps it. It is encoded by
// hand rather than as JSON because the bearer gate decodes one on every
// request.
type tokenRecord struct {
	kind         byte // kindAccess or kindRefresh
	used         bool // refresh token already rotated
	staticClient bool
	issuedAt     int64 // unix nanoseconds
	expiresAt    int64 // unix nanoseconds; 0 = never
	clientID     string
	userID       []byte // JSON
	scope        string
	pair         []byte // refresh token: the key of the access token issued with it
}

const (
	recordVersion = 1

	kindAccess  = 1
	kindRefresh = 2

	flagUsed   = 1 << 0
	flagStatic = 1 << 1
)

var errBadRecord = errors.New("store: malformed token record")

func (r *tokenRecord) encode() []byte {
	b := make([]byte, 0, 3+2*binary.MaxVarintLen64+4*binary.MaxVarintLen32+
		len(r.clientID)+len(r.userID)+len(r.scope)+len(r.pair))
	var flags byte
	if r.used {
		flags |= flagUsed
	}
	if r.staticClient {
		flags |= flagStatic
	}
	b = append(b, recordVersion, r.kind, flags)
	b = binary.AppendVarint(b, r.issuedAt)
	b = binary.AppendVarint(b, r.expiresAt)
	b = appendBytes(b, []byte(r.clientID))
	b = appendBytes(b, r.userID)
	b = appendBytes(b, []byte(r.scope))
	b = appendBytes(b, r.pair)
	return b
}

func appendBytes(b, v []byte) []byte {
	b = binary.AppendUvarint(b, uint64(len(v)))
	return append(b, v...)
}

// decodeRecord decodes b, which belongs to a bbolt transaction: every
// field is copied out of it.
func decodeRecord(b []byte) (tokenRecord, error) {
	var r tokenRecord
	if len(b) < 3 || b[0] != recordVersion {
		return r, errBadRecord
	}
	r.kind, r.used, r.staticClient = b[1], b[2]&flagUsed != 0, b[2]&flagStatic != 0
	b = b[3:]
	var n int
	if r.issuedAt, n = binary.Varint(b); n <= 0 {
		return r, errBadRecord
	}
	b = b[n:]
	if r.expiresAt, n = binary.Varint(b); n <= 0 {
		return r, errBadRecord
	}
	b = b[n:]
	var clientID, userID, scope, pair []byte
	for _, field := range []*[]byte{&clientID, &userID, &scope, &pair} {
		l, n := binary.Uvarint(b)
		if n <= 0 || l > uint64(len(b)-n) {
			return r, errBadRecord
		}
		*field = b[n : n+int(l)]
		b = b[n+int(l):]
	}
	r.clientID = string(clientID)
	r.userID = append([]byte(nil), userID...)
	r.scope = string(scope)
	if len(pair) > 0 {
		r.pair = append([]byte(nil), pair...)
	}
	return r, nil
}

func (r *tokenRecord) expired(now time.Time) bool {
	return r.expiresAt != 0 && now.UnixNano() >= r.expiresAt
}

func (r *tokenRecord) token(f FamilyID) Token {
	t := Token{
		Refresh:      r.kind == kindRefresh,
		Used:         r.used,
		ClientID:     r.clientID,
		StaticClient: r.staticClient,
		UserID:       r.userID,
		UserText:     userText(r.userID),
		Scope:        r.scope,
		Family:       f,
		IssuedAt:     time.Unix(0, r.issuedAt),
	}
	if r.expiresAt != 0 {
		t.ExpiresAt = time.Unix(0, r.expiresAt)
	}
	return t
}

// userText is a JSON user id as text: a string unquoted, a number as
// written, nothing for none.
func userText(id []byte) string {
	if len(id) > 0 && id[0] == '"' {
		var s string
		if json.Unmarshal(id, &s) == nil {
			return s
		}
	}
	return string(id)
}
