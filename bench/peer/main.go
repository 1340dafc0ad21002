// Command peer is the load test's point of comparison: a plain Go OAuth
// 2.0 server built on github.com/go-oauth2/oauth2/v4 with its in-memory
// token store, doing the same password grant against the same upstream
// user check, and a bearer-protected route. It is a module of its own so
// that go-oauth2 never enters the plugin's go.mod.
package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"flag"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"time"

	"github.com/go-oauth2/oauth2/v4/errors"
	"github.com/go-oauth2/oauth2/v4/manage"
	"github.com/go-oauth2/oauth2/v4/models"
	"github.com/go-oauth2/oauth2/v4/server"
	"github.com/go-oauth2/oauth2/v4/store"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:9644", "address to listen on (HTTPS)")
	check := flag.String("check", "http://127.0.0.1:9281/check", "the upstream user check")
	clients := flag.Int("clients", 4, "clients bench-1 … bench-n, secret bench-secret")
	serveCheck := flag.String("serve-check", "", "instead, serve the upstream user check at this address (plain HTTP): every user is valid, as user 42")
	flag.Parse()
	if *serveCheck != "" {
		log.Fatal(http.ListenAndServe(*serveCheck, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if _, _, ok := r.BasicAuth(); !ok {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			_, _ = w.Write([]byte(`{"user_id": 42}`))
		})))
	}

	manager := manage.NewDefaultManager()
	manager.SetPasswordTokenCfg(manage.DefaultPasswordTokenCfg)
	manager.MustTokenStorage(store.NewMemoryTokenStore())
	cs := store.NewClientStore()
	for i := 1; i <= *clients; i++ {
		id := fmt.Sprintf("bench-%d", i)
		if err := cs.Set(id, &models.Client{ID: id, Secret: "bench-secret"}); err != nil {
			log.Fatal(err)
		}
	}
	manager.MapClientStorage(cs)

	srv := server.NewServer(server.NewConfig(), manager)
	srv.SetClientInfoHandler(server.ClientBasicHandler)
	upstream := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 512}}
	srv.SetPasswordAuthorizationHandler(func(ctx context.Context, clientID, username, password string) (string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, *check, nil)
		if err != nil {
			return "", err
		}
		req.SetBasicAuth(username, password)
		resp, err := upstream.Do(req)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			return "", errors.ErrAccessDenied
		}
		if resp.StatusCode/100 != 2 {
			return "", fmt.Errorf("user check answered %d", resp.StatusCode)
		}
		var body struct {
			UserID json.Number `json:"user_id"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.UserID == "" {
			return username, nil
		}
		return body.UserID.String(), nil
	})

	mux := http.NewServeMux()
	mux.HandleFunc("/oauth2/token", func(w http.ResponseWriter, r *http.Request) {
		if err := srv.HandleTokenRequest(w, r); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
		}
	})
	mux.HandleFunc("/bearer", func(w http.ResponseWriter, r *http.Request) {
		if _, err := srv.ValidationBearerToken(r); err != nil {
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})

	cert, err := selfSigned()
	if err != nil {
		log.Fatal(err)
	}
	hs := &http.Server{Addr: *addr, Handler: mux, TLSConfig: &tls.Config{Certificates: []tls.Certificate{cert}}}
	log.Printf("peer listening on https://%s", *addr)
	log.Fatal(hs.ListenAndServeTLS("", ""))
}

// selfSigned makes a certificate for 127.0.0.1 and localhost; the load
// generator does not verify it.
func selfSigned() (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}, nil
}
