package registry

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

const (
	tokenService = "berth-test-registry"
	tokenIssuer  = "berth-test-issuer"
)

// TokenServer issues bearer tokens the way Docker's token auth spec
// describes: GET Realm?service=…&scope=repository:NAME:ACTIONS with basic
// credentials, answered by {"token": JWT}. The registry trusts the
// certificate of the signing key through its rootcertbundle; each token
// carries that certificate in its x5c header, so no key ID is needed.
type TokenServer struct {
	Realm string

	user, password string
	key            *ecdsa.PrivateKey
	certDER        []byte
	certFile       string

	mu       sync.Mutex
	requests int
	scopes   []string
}

func startTokenServer(t testing.TB, dir, user, password string) *TokenServer {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	// No ExtKeyUsage: Go's verifier then accepts the cert for any usage,
	// which the registry's chain check (it asks for the default, server
	// auth) needs.
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: tokenIssuer},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	ts := &TokenServer{user: user, password: password, key: key, certDER: der,
		certFile: filepath.Join(dir, "token-ca.pem")}
	if err := os.WriteFile(ts.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(ts.serve))
	t.Cleanup(srv.Close)
	// The realm names the host "localhost", not 127.0.0.1: clients such as
	// go-containerregistry refuse token realms at private or loopback IP
	// literals other than the registry's own (an SSRF guard), and a token
	// server on another host than the registry is the usual setup.
	ts.Realm = strings.Replace(srv.URL, "127.0.0.1", "localhost", 1) + "/token"
	return ts
}

// Requests returns how many tokens were asked for, and the scopes asked.
func (ts *TokenServer) Requests() (int, []string) {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.requests, append([]string(nil), ts.scopes...)
}

func (ts *TokenServer) serve(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	ts.mu.Lock()
	ts.requests++
	ts.scopes = append(ts.scopes, q["scope"]...)
	ts.mu.Unlock()

	// Anonymous token requests are refused outright: this server stands for
	// a private registry, so a client that forgot its credentials fails.
	u, p, ok := r.BasicAuth()
	if !ok || u != ts.user || p != ts.password {
		w.Header().Set("WWW-Authenticate", `Basic realm="berth-test-token"`)
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}`, http.StatusUnauthorized)
		return
	}
	if q.Get("service") != tokenService {
		http.Error(w, "unknown service", http.StatusBadRequest)
		return
	}
	type access struct {
		Type    string   `json:"type"`
		Name    string   `json:"name"`
		Actions []string `json:"actions"`
	}
	grants := []access{}
	for _, scope := range q["scope"] {
		for s := range strings.FieldsSeq(scope) {
			// repository:NAME:ACTIONS; NAME may itself hold no colon, but
			// the type may carry a class ("repository(plugin)").
			parts := strings.Split(s, ":")
			if len(parts) < 3 {
				continue
			}
			grants = append(grants, access{
				Type:    parts[0],
				Name:    strings.Join(parts[1:len(parts)-1], ":"),
				Actions: strings.Split(parts[len(parts)-1], ","),
			})
		}
	}
	now := time.Now()
	claims := map[string]any{
		"iss":    tokenIssuer,
		"sub":    u,
		"aud":    tokenService,
		"exp":    now.Add(5 * time.Minute).Unix(),
		"nbf":    now.Add(-time.Minute).Unix(),
		"iat":    now.Unix(),
		"jti":    base64.RawURLEncoding.EncodeToString(randomBytes(12)),
		"access": grants,
	}
	token, err := ts.sign(claims)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"token":        token,
		"access_token": token,
		"expires_in":   300,
		"issued_at":    now.UTC().Format(time.RFC3339),
	})
}

// sign makes a compact JWS with ES256 (RFC 7518 §3.4: the signature is
// R and S, each left-padded to 32 bytes, concatenated).
func (ts *TokenServer) sign(claims map[string]any) (string, error) {
	header := map[string]any{
		"typ": "JWT",
		"alg": "ES256",
		"x5c": []string{base64.StdEncoding.EncodeToString(ts.certDER)},
	}
	hb, err := json.Marshal(header)
	if err != nil {
		return "", err
	}
	cb, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	signing := base64.RawURLEncoding.EncodeToString(hb) + "." + base64.RawURLEncoding.EncodeToString(cb)
	sum := sha256.Sum256([]byte(signing))
	r, s, err := ecdsa.Sign(rand.Reader, ts.key, sum[:])
	if err != nil {
		return "", err
	}
	sig := make([]byte, 64)
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return b
}
