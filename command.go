package oauth2provider

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"
)

func init() {
	caddycmd.RegisterCommand(caddycmd.Command{
		Name:  "oauth2",
		Short: "Commands for the oauth2 provider: salts, secrets and clients",
		Long: `
Commands for the OAuth 2.0 provider plugin.

  caddy oauth2 gen-salt        prints a new random salt for the oauth2 global option
  caddy oauth2 hash-secret     hashes a client secret for a static client line
  caddy oauth2 create-client   creates a client in the store and prints its secret, once
  caddy oauth2 list-clients    lists the clients, never their secrets
  caddy oauth2 revoke-client   revokes a client and every token it holds
  caddy oauth2 init-db         creates the store, or with --drop empties it

The client commands find the store and the salt in the config (--config,
--adapter, as for 'caddy run'). While Caddy runs it holds the store's lock,
so they go through its admin API (--address, as for 'caddy reload');
while it is stopped they open the store directly. The result is the same.
`,
		CobraFunc: func(cmd *cobra.Command) {
			cmd.AddCommand(&cobra.Command{
				Use:   "gen-salt",
				Short: "Prints a new random salt (16 bytes, base64)",
				Long: `
Prints 16 random bytes, base64-encoded, for the salt option:

	oauth2 {
		salt <the printed value>
	}

Changing the salt of a running installation invalidates every client secret.
`,
				Args: cobra.NoArgs,
				RunE: caddycmd.WrapCommandFuncForCobra(cmdGenSalt),
			})
			hashCmd := &cobra.Command{
				Use:   "hash-secret [--config <path>] [--adapter <name>]",
				Short: "Hashes a client secret for a static client line",
				Long: `
Reads a client secret (from a terminal prompt, twice, or the first line of
stdin) and prints its hash for a static client line:

	client <client_id> <the printed hash>

The hash depends on the salt of the oauth2 global option, so the command
reads the config: --config and --adapter work as for 'caddy run' (default:
the Caddyfile in the current folder).
`,
				Args: cobra.NoArgs,
				RunE: caddycmd.WrapCommandFuncForCobra(cmdHashSecret),
			}
			addConfigFlags(hashCmd)
			cmd.AddCommand(hashCmd)
			addClientCommands(cmd)
		},
	})
}

func addConfigFlags(cmd *cobra.Command) {
	cmd.Flags().StringP("config", "c", "", "Configuration file (default: ./Caddyfile)")
	cmd.Flags().StringP("adapter", "a", "", "Name of config adapter to apply")
}

func addAdminFlag(cmd *cobra.Command) {
	cmd.Flags().String("address", "", "The address of the admin API of a running Caddy (default: from the config, else localhost:2019)")
}

func cmdGenSalt(caddycmd.Flags) (int, error) {
	fmt.Println(newSalt())
	return 0, nil
}

func cmdHashSecret(fl caddycmd.Flags) (int, error) {
	app, err := appFromConfig(fl.String("config"), fl.String("adapter"))
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	salt, err := decodeSalt(caddy.NewReplacer().ReplaceKnown(app.Salt, ""))
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	secret, err := readSecret(os.Stdin, "client secret")
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	hash, err := hashSecret(string(secret), salt)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	fmt.Println(hash)
	return 0, nil
}

// appFromConfig loads a config as 'caddy run' would and returns its
// oauth2 app, unprovisioned.
func appFromConfig(configFile, adapter string) (*App, error) {
	cfg, err := loadCLIConfig(configFile, adapter)
	if err != nil {
		return nil, err
	}
	if cfg.json == nil {
		return nil, errors.New("no config found: use --config <file>, or run in the folder of your Caddyfile")
	}
	if cfg.app == nil {
		return nil, fmt.Errorf("config %s has no oauth2 global option", cfg.file)
	}
	return cfg.app, nil
}

// cliConfig is a config as a command reads it: maybe none at all.
type cliConfig struct {
	json    []byte
	file    string
	adapter string
	app     *App // nil if the config has no oauth2 app
}

func loadCLIConfig(configFile, adapter string) (cliConfig, error) {
	cfgJSON, file, adapter, err := caddycmd.LoadConfig(configFile, adapter)
	if err != nil {
		return cliConfig{}, err
	}
	cfg := cliConfig{json: cfgJSON, file: file, adapter: adapter}
	if len(cfgJSON) == 0 {
		return cfg, nil
	}
	var parsed struct {
		Apps struct {
			OAuth2 *App `json:"oauth2"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(cfgJSON, &parsed); err != nil {
		return cliConfig{}, fmt.Errorf("reading config %s: %w", file, err)
	}
	cfg.app = parsed.Apps.OAuth2
	return cfg, nil
}

// readSecret reads a secret from a terminal, without echo and twice to
// confirm, or else the first line of r.
func readSecret(r *os.File, what string) ([]byte, error) {
	fd := int(r.Fd())
	if !term.IsTerminal(fd) {
		return readFirstLine(r, what)
	}
	// Restore the terminal if the user gives up with ^C.
	state, _ := term.GetState(fd)
	c := make(chan os.Signal, 1)
	signal.Notify(c, os.Interrupt)
	go func() {
		if _, ok := <-c; ok {
			_ = term.Restore(fd, state)
			os.Exit(caddy.ExitCodeFailedStartup)
		}
	}()
	defer func() { signal.Stop(c); close(c) }()

	fmt.Fprintf(os.Stderr, "Enter %s: ", what)
	secret, err := term.ReadPassword(fd)
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "Confirm %s: ", what)
	confirm, err := term.ReadPassword(fd)
	fmt.Fprintln(os.Stderr)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(secret, confirm) {
		return nil, fmt.Errorf("the two entries of the %s do not match", what)
	}
	if len(secret) == 0 {
		return nil, fmt.Errorf("the %s is empty", what)
	}
	return secret, nil
}

func readFirstLine(r io.Reader, what string) ([]byte, error) {
	line, err := bufio.NewReader(r).ReadBytes('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, err
	}
	if trimmed, ok := bytes.CutSuffix(line, []byte("\n")); ok {
		line = bytes.TrimSuffix(trimmed, []byte("\r"))
	}
	if len(line) == 0 {
		return nil, fmt.Errorf("the %s is empty (give it on stdin)", what)
	}
	return line, nil
}
