package store

import (
	"fmt"
	"path/filepath"
	"time"

	"github.com/caddyserver/caddy/v2"
	"github.com/caddyserver/caddy/v2/caddyconfig/caddyfile"
)

func init() {
	caddy.RegisterModule(BoltModule{})
}

// BoltModule is the embedded token store: one bbolt file, opened once per
// process and shared by every config that names it, so a config reload
// neither waits for the file lock nor loses a token.
type BoltModule struct {
	// Path of the database file. Default: oauth2/oauth2.db in Caddy's
	// data directory. Placeholders like {env.*} are expanded. The file is
	// created with mode 0600.
	Path string `json:"path,omitempty"`

	*Bolt `json:"-"`
	key   string
}

// CaddyModule returns the Caddy module information.
func (BoltModule) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "oauth2.stores.bbolt",
		New: func() caddy.Module { return new(BoltModule) },
	}
}

// DefaultBoltPath is where the store lives when no path is configured.
func DefaultBoltPath() string {
	return filepath.Join(caddy.AppDataDir(), "oauth2", "oauth2.db")
}

// Provision opens the file, or takes the already open one from the pool.
func (m *BoltModule) Provision(ctx caddy.Context) error {
	path := caddy.NewReplacer().ReplaceKnown(m.Path, "")
	if path == "" {
		path = DefaultBoltPath()
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("storage bbolt: %w", err)
	}
	v, _, err := boltPool.LoadOrNew(abs, func() (caddy.Destructor, error) {
		return OpenBolt(abs, 2*time.Second)
	})
	if err != nil {
		return fmt.Errorf("storage bbolt: %w", err)
	}
	m.Bolt, m.key = v.(*Bolt), abs
	return nil
}

// Cleanup lets go of the file; the last config to use it closes it.
func (m *BoltModule) Cleanup() error {
	if m.key == "" {
		return nil
	}
	_, err := boltPool.Delete(m.key)
	return err
}

// Destruct closes the file when no config uses it any more.
func (b *Bolt) Destruct() error { return b.Close() }

// boltPool holds the open files, keyed by absolute path.
var boltPool = caddy.NewUsagePool()

// Interface guards
var (
	_ caddy.Provisioner  = (*BoltModule)(nil)
	_ caddy.CleanerUpper = (*BoltModule)(nil)
	_ caddy.Destructor   = (*Bolt)(nil)
	_ Store              = (*BoltModule)(nil)
)

// UnmarshalCaddyfile sets up the store from Caddyfile tokens:
//
//	storage bbolt [<path>]
func (m *BoltModule) UnmarshalCaddyfile(d *caddyfile.Dispenser) error {
	d.Next() // the module name
	if d.NextArg() {
		m.Path = d.Val()
	}
	if d.NextArg() {
		return d.ArgErr()
	}
	if d.NextBlock(0) {
		return d.Errf("storage bbolt takes no block")
	}
	return nil
}

var _ caddyfile.Unmarshaler = (*BoltModule)(nil)
