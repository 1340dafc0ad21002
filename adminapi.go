package oauth2provider

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/caddyserver/caddy/v2"

	"github.com/caddy-plugins/oauth2provider/store"
)

func init() {
	caddy.RegisterModule(adminAPI{})
}

// adminAPI serves client management on Caddy's admin endpoint, so the
// `caddy oauth2` commands can work while Caddy holds the store's lock:
//
//	GET    /oauth2/clients       list the clients (never their secrets)
//	POST   /oauth2/clients       create a client; the answer holds its secret, once
//	DELETE /oauth2/clients/<id>  revoke a client and every token it holds
type adminAPI struct{}

// CaddyModule returns the Caddy module information.
func (adminAPI) CaddyModule() caddy.ModuleInfo {
	return caddy.ModuleInfo{
		ID:  "admin.api.oauth2",
		New: func() caddy.Module { return new(adminAPI) },
	}
}

const adminClientsPath = "/oauth2/clients"

// Routes implements caddy.AdminRouter.
func (adminAPI) Routes() []caddy.AdminRoute {
	return []caddy.AdminRoute{
		{Pattern: adminClientsPath, Handler: caddy.AdminHandlerFunc(handleClients)},
		{Pattern: adminClientsPath + "/", Handler: caddy.AdminHandlerFunc(handleClients)},
	}
}

// runningManager manages the clients of the running config's oauth2 app.
func runningManager() (clientManager, error) {
	app, err := caddy.ActiveContext().AppIfConfigured("oauth2")
	if err != nil || app == nil {
		return clientManager{}, caddy.APIError{HTTPStatus: http.StatusNotFound, Err: errors.New("the running config has no oauth2 app")}
	}
	a := app.(*App)
	return clientManager{store: a.store, salt: a.salt, static: a.Clients}, nil
}

func handleClients(w http.ResponseWriter, r *http.Request) error {
	m, err := runningManager()
	if err != nil {
		return err
	}
	id := strings.TrimPrefix(strings.TrimPrefix(r.URL.Path, adminClientsPath), "/")
	switch {
	case id == "" && r.Method == http.MethodGet:
		list, err := m.list(r.Context())
		if err != nil {
			return apiError(http.StatusInternalServerError, err)
		}
		return writeAdminJSON(w, http.StatusOK, list)
	case id == "" && r.Method == http.MethodPost:
		var req ClientRequest
		body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10))
		if err != nil {
			return apiError(http.StatusBadRequest, err)
		}
		if len(strings.TrimSpace(string(body))) > 0 {
			dec := json.NewDecoder(strings.NewReader(string(body)))
			dec.DisallowUnknownFields()
			if err := dec.Decode(&req); err != nil {
				return apiError(http.StatusBadRequest, fmt.Errorf("decoding the request: %w", err))
			}
		}
		nc, err := m.create(r.Context(), req)
		if err != nil {
			return apiError(http.StatusBadRequest, err)
		}
		return writeAdminJSON(w, http.StatusCreated, nc)
	case r.Method == http.MethodDelete && r.URL.Path != adminClientsPath:
		// Any id, even an empty one or one with a slash, is looked up, so
		// the answer is the same as with Caddy stopped.
		switch err := m.revoke(r.Context(), id); {
		case errors.Is(err, errUnknownClient):
			return apiError(http.StatusNotFound, err)
		case errors.Is(err, errStaticClient):
			return apiError(http.StatusConflict, err)
		case err != nil:
			return apiError(http.StatusInternalServerError, err)
		}
		return writeAdminJSON(w, http.StatusOK, map[string]string{"revoked": id})
	case id == "":
		w.Header().Set("Allow", "GET, POST")
		return apiError(http.StatusMethodNotAllowed, fmt.Errorf("method not allowed: %s", r.Method))
	default:
		w.Header().Set("Allow", "DELETE")
		return apiError(http.StatusMethodNotAllowed, fmt.Errorf("method not allowed: %s", r.Method))
	}
}

func apiError(status int, err error) error {
	if errors.Is(err, store.ErrClientExists) {
		status = http.StatusConflict
	}
	return caddy.APIError{HTTPStatus: status, Err: err}
}

func writeAdminJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// Interface guards
var _ caddy.AdminRouter = (*adminAPI)(nil)
