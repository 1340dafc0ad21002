package oauth2provider

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/caddy-plugins/oauth2provider/store"
)

// Client management, shared by the admin API (Caddy running) and the
// CLI's direct access to the store (Caddy stopped), so both give the
// same result.

// ClientRequest is what a new client may do: the body of
// POST /oauth2/clients.
type ClientRequest = store.ClientPolicy

// NewClient is a created client with its secret, shown once; a public
// client has none.
type NewClient struct {
	ID     string `json:"client_id"`
	Secret string `json:"client_secret,omitempty"`
}

// ClientInfo describes a client, never with its secret.
type ClientInfo struct {
	ID        string     `json:"client_id"`
	CreatedAt *time.Time `json:"created_at,omitempty"`
	Static    bool       `json:"static,omitempty"` // defined in the config
	store.ClientPolicy
}

// Errors of client management.
var (
	errUnknownClient = errors.New("unknown client id")
	errStaticClient  = errors.New("the client is defined in the config; remove its client line there and reload")
)

// clientManager creates, lists and revokes the clients of one store.
type clientManager struct {
	store  store.Store
	salt   []byte
	static []StaticClient
}

func (m clientManager) isStatic(id string) bool {
	return slices.ContainsFunc(m.static, func(c StaticClient) bool { return c.ID == id })
}

// create makes a client with a random id (128 bits) and secret (256
// bits) and stores the secret's hash.
func (m clientManager) create(ctx context.Context, req ClientRequest) (NewClient, error) {
	policy := new(client)
	if err := policy.setPolicy(req); err != nil {
		return NewClient{}, err
	}
	// Hex, not base64url: an id that began with "-" would read as a flag
	// to `caddy oauth2 revoke-client <id>`.
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	nc := NewClient{ID: hex.EncodeToString(id)}
	if m.isStatic(nc.ID) {
		return NewClient{}, store.ErrClientExists
	}
	var hash string
	if !req.Public {
		nc.Secret = randomString(32)
		var err error
		if hash, err = hashSecret(nc.Secret, m.salt); err != nil {
			return NewClient{}, err
		}
	}
	err := m.store.CreateClient(ctx, store.Client{
		ID:           nc.ID,
		SecretHash:   hash,
		ClientPolicy: policy.ClientPolicy,
		CreatedAt:    time.Now().UTC().Truncate(time.Second),
	})
	if err != nil {
		return NewClient{}, err
	}
	return nc, nil
}

// list returns the static clients, then the stored ones.
func (m clientManager) list(ctx context.Context) ([]ClientInfo, error) {
	var stored []store.Client
	if m.store != nil {
		var err error
		if stored, err = m.store.Clients(ctx); err != nil {
			return nil, err
		}
	}
	infos := make([]ClientInfo, 0, len(m.static)+len(stored))
	for _, c := range m.static {
		infos = append(infos, ClientInfo{ID: c.ID, Static: true, ClientPolicy: withDefaults(c.ClientPolicy)})
	}
	for _, c := range stored {
		created := c.CreatedAt
		infos = append(infos, ClientInfo{ID: c.ID, CreatedAt: &created, ClientPolicy: withDefaults(c.ClientPolicy)})
	}
	return infos, nil
}

// withDefaults fills in the grants a client that names none has.
func withDefaults(p store.ClientPolicy) store.ClientPolicy {
	var c client
	if c.setPolicy(p) == nil {
		return c.ClientPolicy
	}
	return p
}

// revoke deletes a stored client and every token it holds.
func (m clientManager) revoke(ctx context.Context, id string) error {
	if m.isStatic(id) {
		return errStaticClient
	}
	if m.store == nil {
		return fmt.Errorf("%w: %s", errUnknownClient, id)
	}
	err := m.store.RevokeClient(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: %s", errUnknownClient, id)
	}
	return err
}
