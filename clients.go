package oauth2provider

import (
	"context"
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
type ClientRequest struct {
	GrantTypes   []string `json:"grant_types,omitempty"`
	Scopes       []string `json:"scopes,omitempty"`
	DefaultScope []string `json:"default_scope,omitempty"`
}

// NewClient is a created client with its secret, shown once.
type NewClient struct {
	ID     string `json:"client_id"`
	Secret string `json:"client_secret"`
}

// ClientInfo describes a client, never with its secret.
type ClientInfo struct {
	ID           string     `json:"client_id"`
	CreatedAt    *time.Time `json:"created_at,omitempty"`
	Static       bool       `json:"static,omitempty"` // defined in the config
	GrantTypes   []string   `json:"grant_types"`
	Scopes       []string   `json:"scopes,omitempty"`
	DefaultScope []string   `json:"default_scope,omitempty"`
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
	if err := policy.setPolicy(req.GrantTypes, req.Scopes, req.DefaultScope); err != nil {
		return NewClient{}, err
	}
	nc := NewClient{ID: randomString(16), Secret: randomString(32)}
	if m.isStatic(nc.ID) {
		return NewClient{}, store.ErrClientExists
	}
	hash, err := hashSecret(nc.Secret, m.salt)
	if err != nil {
		return NewClient{}, err
	}
	err = m.store.CreateClient(ctx, store.Client{
		ID:           nc.ID,
		SecretHash:   hash,
		GrantTypes:   policy.grantTypes,
		Scopes:       policy.scopes,
		DefaultScope: policy.defaultScope,
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
		grants := c.GrantTypes
		if len(grants) == 0 {
			grants = defaultGrantTypes
		}
		infos = append(infos, ClientInfo{ID: c.ID, Static: true, GrantTypes: grants, Scopes: c.Scopes, DefaultScope: c.DefaultScope})
	}
	for _, c := range stored {
		created := c.CreatedAt
		grants := c.GrantTypes
		if len(grants) == 0 {
			grants = defaultGrantTypes
		}
		infos = append(infos, ClientInfo{ID: c.ID, CreatedAt: &created, GrantTypes: grants, Scopes: c.Scopes, DefaultScope: c.DefaultScope})
	}
	return infos, nil
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
