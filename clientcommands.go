package oauth2provider

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/caddyserver/caddy/v2"
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	"github.com/caddy-plugins/oauth2provider/store"
)

// The client commands: through the admin API of a running Caddy, or
// straight to the store when Caddy is stopped.

func addClientCommands(cmd *cobra.Command) {
	create := &cobra.Command{
		Use:   "create-client [--json] [--grant-types a,b] [--scopes x,y] [--default-scope x] [--public] [--redirect-uri u,v] [--name n] [--skip-consent]",
		Short: "Creates a client and prints its id and secret (the secret only this once)",
		Args:  cobra.NoArgs,
		RunE:  caddycmd.WrapCommandFuncForCobra(cmdCreateClient),
	}
	create.Flags().Bool("json", false, `Print {"client_id":…,"client_secret":…}`)
	create.Flags().String("grant-types", "", "Comma-separated grants the client may use (default: password,refresh_token)")
	create.Flags().String("scopes", "", "Comma-separated scopes the client may ask for")
	create.Flags().String("default-scope", "", "Comma-separated scopes granted when the client asks for none")
	create.Flags().Bool("public", false, "A public client (browser or native app): no secret, authorization_code with PKCE")
	create.Flags().String("redirect-uri", "", "Comma-separated redirect URIs, for the authorization_code grant")
	create.Flags().String("name", "", "The name the login page shows")
	create.Flags().Bool("skip-consent", false, "Do not ask the user to consent (first-party apps)")

	list := &cobra.Command{
		Use:   "list-clients [--json]",
		Short: "Lists the clients and when they were created, never their secrets",
		Args:  cobra.NoArgs,
		RunE:  caddycmd.WrapCommandFuncForCobra(cmdListClients),
	}
	list.Flags().Bool("json", false, "Print JSON")

	revoke := &cobra.Command{
		Use:   "revoke-client <client_id>",
		Short: "Revokes a client and every token it holds, at once",
		Args:  cobra.ExactArgs(1),
		RunE:  caddycmd.WrapCommandFuncForCobra(cmdRevokeClient),
	}

	initDB := &cobra.Command{
		Use:   "init-db [--drop] [--yes]",
		Short: "Creates the store; with --drop first wipes all clients and tokens",
		Long: `
Creates the store's file and what it holds, if missing. With --drop, first
deletes every client and token, after asking (or not, with --yes). Caddy
must be stopped: init-db works on the file directly and refuses to run
while a Caddy answers on the admin address.
`,
		Args: cobra.NoArgs,
		RunE: caddycmd.WrapCommandFuncForCobra(cmdInitDB),
	}
	initDB.Flags().Bool("drop", false, "Delete all clients and tokens first")
	initDB.Flags().Bool("yes", false, "Do not ask before --drop")

	for _, c := range []*cobra.Command{create, list, revoke, initDB} {
		addConfigFlags(c)
		addAdminFlag(c)
		cmd.AddCommand(c)
	}
}

func cmdCreateClient(fl caddycmd.Flags) (int, error) {
	req := ClientRequest{
		Public:       fl.Bool("public"),
		GrantTypes:   splitList(fl.String("grant-types")),
		Scopes:       splitList(fl.String("scopes")),
		DefaultScope: splitList(fl.String("default-scope")),
		RedirectURIs: splitList(fl.String("redirect-uri")),
		Name:         fl.String("name"),
		SkipConsent:  fl.Bool("skip-consent"),
	}
	var nc NewClient
	err := withClients(fl, true, func(a *adminClient) error {
		body, _ := json.Marshal(req)
		return a.do(http.MethodPost, adminClientsPath, body, &nc)
	}, func(m clientManager) (err error) {
		nc, err = m.create(context.Background(), req)
		return err
	})
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	switch {
	case fl.Bool("json"):
		b, _ := json.Marshal(nc)
		fmt.Println(string(b))
	case nc.Secret == "":
		fmt.Printf("client_id: %s\n(a public client: no secret)\n", nc.ID)
	default:
		fmt.Printf("client_id: %s\nclient_secret: %s\n", nc.ID, nc.Secret)
	}
	return 0, nil
}

func cmdListClients(fl caddycmd.Flags) (int, error) {
	var list []ClientInfo
	err := withClients(fl, false, func(a *adminClient) error {
		return a.do(http.MethodGet, adminClientsPath, nil, &list)
	}, func(m clientManager) (err error) {
		list, err = m.list(context.Background())
		return err
	})
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	if fl.Bool("json") {
		b, _ := json.Marshal(list)
		fmt.Println(string(b))
		return 0, nil
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CLIENT_ID\tCREATED\tGRANT_TYPES\tSCOPES")
	for _, c := range list {
		created := "(config)"
		if c.CreatedAt != nil {
			created = c.CreatedAt.UTC().Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", c.ID, created, strings.Join(c.GrantTypes, ","), strings.Join(c.Scopes, ","))
	}
	return 0, tw.Flush()
}

func cmdRevokeClient(fl caddycmd.Flags) (int, error) {
	id := fl.Arg(0)
	err := withClients(fl, false, func(a *adminClient) error {
		return a.do(http.MethodDelete, adminClientsPath+"/"+url.PathEscape(id), nil, nil)
	}, func(m clientManager) error {
		return m.revoke(context.Background(), id)
	})
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	fmt.Printf("revoked client %s and every token it held\n", id)
	return 0, nil
}

func cmdInitDB(fl caddycmd.Flags) (int, error) {
	cfg, admin, err := cliTarget(fl)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	if running, _ := admin.running(); running {
		return caddy.ExitCodeFailedStartup, fmt.Errorf("a Caddy is running (admin API at %s); stop it before init-db, which works on the file directly", admin.addr)
	}
	path, err := boltPath(cfg.app)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	if fl.Bool("drop") && !fl.Bool("yes") {
		if err := confirm(fmt.Sprintf("Delete every client and token in %s? Type 'yes' to go on: ", path)); err != nil {
			return caddy.ExitCodeFailedStartup, err
		}
	}
	b, err := openStore(path, admin.addr)
	if err != nil {
		return caddy.ExitCodeFailedStartup, err
	}
	defer b.Close()
	if fl.Bool("drop") {
		if err := b.Drop(context.Background()); err != nil {
			return caddy.ExitCodeFailedStartup, err
		}
		fmt.Printf("dropped every client and token; the store is ready: %s\n", path)
		return 0, nil
	}
	fmt.Printf("the store is ready: %s\n", path)
	return 0, nil
}

// confirm asks on the terminal; without one, it refuses.
func confirm(question string) error {
	if !term.IsTerminal(int(os.Stdin.Fd())) {
		return errors.New("refusing to drop without confirmation: stdin is not a terminal; add --yes")
	}
	fmt.Fprint(os.Stderr, question)
	answer, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if strings.TrimSpace(answer) != "yes" {
		return errors.New("not confirmed; nothing was changed")
	}
	return nil
}

// withClients runs viaAdmin against a running Caddy's admin API, or, if
// no Caddy answers there, direct against the store of the config. A
// command that only reads or deletes (create false) does not create a
// store that is not there.
func withClients(fl caddycmd.Flags, create bool, viaAdmin func(*adminClient) error, direct func(clientManager) error) error {
	cfg, admin, err := cliTarget(fl)
	if err != nil {
		return err
	}
	running, err := admin.running()
	if err != nil {
		return err
	}
	if running {
		return viaAdmin(admin)
	}
	if cfg.json == nil {
		return fmt.Errorf("no Caddy answers at %s, and no config names the store: use --config <file> (or --address if Caddy's admin listens elsewhere)", admin.addr)
	}
	if cfg.app == nil {
		return fmt.Errorf("config %s has no oauth2 global option", cfg.file)
	}
	m := clientManager{static: cfg.app.Clients}
	if create {
		if m.salt, err = decodeSalt(caddy.NewReplacer().ReplaceKnown(cfg.app.Salt, "")); err != nil {
			return fmt.Errorf("the config's salt is needed to hash the secret: %w", err)
		}
	}
	path, err := boltPath(cfg.app)
	if err != nil {
		return err
	}
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) && !create {
		return direct(m) // no store yet: no stored clients
	}
	b, err := openStore(path, admin.addr)
	if err != nil {
		return err
	}
	defer b.Close()
	m.store = b
	return direct(m)
}

// cliTarget loads the config (if any) and finds the admin address.
func cliTarget(fl caddycmd.Flags) (cliConfig, *adminClient, error) {
	cfg, err := loadCLIConfig(fl.String("config"), fl.String("adapter"))
	if err != nil {
		return cliConfig{}, nil, err
	}
	addr, err := caddycmd.DetermineAdminAPIAddress(fl.String("address"), cfg.json, cfg.file, cfg.adapter)
	if err != nil {
		return cliConfig{}, nil, err
	}
	return cfg, &adminClient{addr: addr}, nil
}

// boltPath is the file of the config's bbolt store.
func boltPath(app *App) (string, error) {
	if app == nil || app.StorageRaw == nil {
		return store.DefaultBoltPath(), nil
	}
	var mod struct {
		Module string `json:"module"`
		Path   string `json:"path"`
	}
	if err := json.Unmarshal(app.StorageRaw, &mod); err != nil {
		return "", fmt.Errorf("reading the storage config: %w", err)
	}
	if mod.Module != "bbolt" {
		return "", fmt.Errorf("with Caddy stopped, only the bbolt store can be opened directly (this config uses %q); start Caddy and run the command again", mod.Module)
	}
	if path := caddy.NewReplacer().ReplaceKnown(mod.Path, ""); path != "" {
		return path, nil
	}
	return store.DefaultBoltPath(), nil
}

func openStore(path, adminAddr string) (*store.Bolt, error) {
	b, err := store.OpenBolt(path, time.Second)
	if errors.Is(err, store.ErrLocked) {
		return nil, fmt.Errorf("the store %s is locked by another process, and no Caddy admin API answers at %s (use --address if Caddy's admin listens elsewhere)", path, adminAddr)
	}
	return b, err
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// adminClient talks to the admin API of a running Caddy.
type adminClient struct {
	addr string
}

// running reports whether a Caddy with this plugin's admin API answers.
// Only a refused or failed connection means "not running"; a Caddy that
// answers without the oauth2 admin API is an error.
func (a *adminClient) running() (bool, error) {
	status, body, err := a.request(http.MethodGet, adminClientsPath, nil)
	var opErr *net.OpError
	switch {
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return false, nil
	case err != nil:
		return false, err
	case status == http.StatusOK:
		return true, nil
	default:
		return false, fmt.Errorf("the Caddy at %s does not serve the oauth2 admin API: %s", a.addr, adminErrorText(status, body))
	}
}

// do sends a request and decodes a 2xx JSON answer into out.
func (a *adminClient) do(method, uri string, body []byte, out any) error {
	status, respBody, err := a.request(method, uri, body)
	if err != nil {
		return err
	}
	if status < 200 || status > 299 {
		return errors.New(adminErrorText(status, respBody))
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(respBody, out)
}

func (a *adminClient) request(method, uri string, body []byte) (int, []byte, error) {
	addr, err := caddy.ParseNetworkAddress(a.addr)
	if err != nil || addr.PortRangeSize() > 1 {
		return 0, nil, fmt.Errorf("invalid admin address %s", a.addr)
	}
	dialAddr := addr.JoinHostPort(0)
	origin := "http://" + dialAddr
	if addr.IsUnixNetwork() {
		origin = "http://127.0.0.1"
	}
	req, err := http.NewRequest(method, origin+uri, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	if !addr.IsUnixNetwork() {
		req.Header.Set("Origin", origin)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	client := http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return (&net.Dialer{Timeout: 5 * time.Second}).DialContext(ctx, addr.Network, dialAddr)
			},
		},
	}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return 0, nil, err
	}
	defer resp.Body.Close()
	respBody, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	return resp.StatusCode, respBody, err
}

// adminErrorText is the message of an admin API error answer.
func adminErrorText(status int, body []byte) string {
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(body, &e) == nil && e.Error != "" {
		return e.Error
	}
	return fmt.Sprintf("HTTP %d: %s", status, bytes.TrimSpace(body))
}
