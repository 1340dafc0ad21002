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
		Short: "Commands for the oauth2 provider: salts and client secrets",
		Long: `
Commands for the OAuth 2.0 provider plugin.

  caddy oauth2 gen-salt       prints a new random salt for the oauth2 global option
  caddy oauth2 hash-secret    hashes a client secret for a static client line
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
		},
	})
}

func addConfigFlags(cmd *cobra.Command) {
	cmd.Flags().StringP("config", "c", "", "Configuration file (default: ./Caddyfile)")
	cmd.Flags().StringP("adapter", "a", "", "Name of config adapter to apply")
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
	cfgJSON, file, _, err := caddycmd.LoadConfig(configFile, adapter)
	if err != nil {
		return nil, err
	}
	if len(cfgJSON) == 0 {
		return nil, errors.New("no config found: use --config <file>, or run in the folder of your Caddyfile")
	}
	var cfg struct {
		Apps struct {
			OAuth2 *App `json:"oauth2"`
		} `json:"apps"`
	}
	if err := json.Unmarshal(cfgJSON, &cfg); err != nil {
		return nil, fmt.Errorf("reading config %s: %w", file, err)
	}
	if cfg.Apps.OAuth2 == nil {
		return nil, fmt.Errorf("config %s has no oauth2 global option", file)
	}
	return cfg.Apps.OAuth2, nil
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
