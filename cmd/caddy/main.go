// Command caddy is Caddy with its standard modules and the oauth2 plugin,
// for `go run ./cmd/caddy` and `go build ./cmd/caddy`.
package main

import (
	caddycmd "github.com/caddyserver/caddy/v2/cmd"

	_ "github.com/caddyserver/caddy/v2/modules/standard"

	_ "github.com/caddy-plugins/oauth2provider"
)

func main() {
	caddycmd.Main()
}
