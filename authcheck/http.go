package authcheck

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/caddyserver/caddy/v2"
)

func init() {
	caddy.RegisterModule(HTTP{})
}

// HTTP checks credentials by sending them to a URL, the way a browser
// answers Caddy's own basic_auth: `POST <url>` with
// `Authorization: Basic base64(username ":" password)`. A 2xx answer means
// valid, 401 or 403 means invalid, anything else (or no answer within the
// timeout) means unavailable.
type HTTP struct {
	// The URL to POST to. Required; http or https; must not carry
	// credentials.
	URL string `json:"url,omitempty"`

	// How long to wait for an answer. Default: 5s.
	Timeout caddy.Duration `json:"timeout,omitempty"`

	// Extra request headers, e.g. an API key. Values may use
	// placeholders, including those of the request being served.
	HeadersUp http.Header `json:"header_up,omitempty"`

	// The JSON field of a 2xx body that holds the user id; it keeps its
	// JSON type, so a number stays a number. With no JSON body or no such
	// field, the user id is the username. Default: user_id.
	UserIDField string `json:"user_id_field,omitempty"`

	client *http.Client
	// where names the URL in errors: without its query, which may hold
	// a key.
	where string
}

// CaddyModule returns the Caddy module information.
func (HTTP) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "oauth2.auth_checkers.http",
		New: func() caddy.Module { return new(HTTP) },
	}
}

// DefaultTimeout is the Timeout when none is configured.
const DefaultTimeout = 5 * time.Second

// maxBody bounds how much of the answer is read.
const maxBody = 1 << 20

// Provision validates the configuration.
func (h *HTTP) Provision(ctx caddy.Context) error {
	if err := h.validate(); err != nil {
		return err
	}
	if h.Timeout == 0 {
		h.Timeout = caddy.Duration(DefaultTimeout)
	}
	if h.UserIDField == "" {
		h.UserIDField = "user_id"
	}
	u, _ := url.Parse(h.URL) // validated above
	h.where = u.Scheme + "://" + u.Host + u.EscapedPath()
	transport := http.DefaultTransport.(*http.Transport).Clone()
	// A login storm must reuse connections to the accounts service, not
	// open one per login (the default keeps 2 idle per host).
	transport.MaxIdleConnsPerHost = 256
	h.client = &http.Client{
		Transport: transport,
		Timeout:   time.Duration(h.Timeout),
		// A redirect is not an answer; following one could send the
		// password somewhere else.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return nil
}

func (h *HTTP) validate() error {
	if h.URL == "" {
		return errors.New("auth_check: a URL is required")
	}
	u, err := url.Parse(h.URL)
	if err != nil {
		return fmt.Errorf("auth_check: bad URL: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return fmt.Errorf("auth_check: URL must be http:// or https:// with a host: %s", h.URL)
	}
	if u.User != nil {
		return errors.New("auth_check: the URL must not carry credentials; use header_up")
	}
	if h.Timeout < 0 {
		return errors.New("auth_check: timeout must not be negative")
	}
	return nil
}

// CheckAuth implements AuthChecker.
func (h *HTTP) CheckAuth(ctx context.Context, username, password string) (json.RawMessage, error) {
	// RFC 7617: a user-id containing a colon cannot be sent in Basic.
	if strings.ContainsRune(username, ':') {
		return nil, fmt.Errorf("%w: username contains a colon", ErrInvalidCredentials)
	}
	ctx, cancel := context.WithTimeout(ctx, time.Duration(h.Timeout))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.URL, nil)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	repl, ok := ctx.Value(caddy.ReplacerCtxKey).(*caddy.Replacer)
	if !ok {
		repl = caddy.NewReplacer()
	}
	for name, values := range h.HeadersUp {
		for _, v := range values {
			req.Header.Add(name, repl.ReplaceKnown(v, ""))
		}
	}
	req.SetBasicAuth(username, password)

	resp, err := h.client.Do(req)
	if err != nil {
		// The error names the URL and the cause, never the header.
		return nil, fmt.Errorf("%w: %s: %v", ErrUnavailable, h.where, requestFailure(err))
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return nil, ErrInvalidCredentials
	case resp.StatusCode < 200 || resp.StatusCode > 299:
		return nil, fmt.Errorf("%w: %s answered %d", ErrUnavailable, h.where, resp.StatusCode)
	case err != nil:
		return nil, fmt.Errorf("%w: reading the answer of %s: %v", ErrUnavailable, h.where, err)
	}
	return h.userID(body, username)
}

// userID picks the user id out of a 2xx body.
func (h *HTTP) userID(body []byte, username string) (json.RawMessage, error) {
	fallback, _ := json.Marshal(username)
	body = bytes.TrimSpace(body)
	if len(body) == 0 || body[0] != '{' {
		return fallback, nil
	}
	// A JSON object that does not parse (cut short, or over maxBody) is a
	// broken answer: guessing the username could name the wrong user.
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, fmt.Errorf("%w: %s answered malformed JSON: %v", ErrUnavailable, h.where, err)
	}
	id, ok := fields[h.UserIDField]
	if !ok || string(id) == "null" {
		return fallback, nil
	}
	switch id[0] {
	case '"':
		var s string
		if err := json.Unmarshal(id, &s); err != nil || s == "" {
			return nil, fmt.Errorf("%w: %s answered an empty %q", ErrUnavailable, h.where, h.UserIDField)
		}
	case '-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9':
	default:
		return nil, fmt.Errorf("%w: %s answered a %q that is neither a string nor a number", ErrUnavailable, h.where, h.UserIDField)
	}
	var compact bytes.Buffer
	if err := json.Compact(&compact, id); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrUnavailable, err)
	}
	return compact.Bytes(), nil
}

// requestFailure is the cause of a failed request, without the URL that
// *url.Error carries in full.
func requestFailure(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		if ue.Timeout() {
			return "no answer in time"
		}
		return ue.Err.Error()
	}
	return err.Error()
}

// Interface guards
var (
	_ caddy.Provisioner = (*HTTP)(nil)
	_ AuthChecker       = (*HTTP)(nil)
)
