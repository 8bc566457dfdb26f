package o365api

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

const (
	testClientID = "11111111-2222-3333-4444-555555555555"
	testSecret   = "s3cr3t~value.that-must-never-leak"
	testScope    = "https://manage.office.com/.default"
)

// tokenServer is a minimal Entra ID over TLS: the OIDC document MSAL reads
// first, and a v2 token endpoint checking a client secret or a PS256/RS256
// client assertion signed by the key of cert.
type tokenServer struct {
	*httptest.Server
	cert     *x509.Certificate // nil: only the secret is accepted
	requests atomic.Int32      // token requests
}

func newTokenServer(t *testing.T, cert *x509.Certificate) *tokenServer {
	t.Helper()
	ts := &tokenServer{cert: cert}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{tenant}/v2.0/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		authority := ts.URL + "/" + r.PathValue("tenant")
		writeJSON(w, http.StatusOK, fmt.Sprintf(`{"authorization_endpoint":%q,"token_endpoint":%q,"issuer":%q}`,
			authority+"/oauth2/v2.0/authorize", authority+"/oauth2/v2.0/token", authority+"/v2.0"))
	})
	mux.HandleFunc("POST /{tenant}/oauth2/v2.0/token", func(w http.ResponseWriter, r *http.Request) {
		n := ts.requests.Add(1)
		if err := ts.checkClient(r); err != nil {
			writeJSON(w, http.StatusUnauthorized, fmt.Sprintf(`{"error":"invalid_client","error_description":%q,"error_codes":[7000215]}`,
				"AADSTS7000215: "+err.Error()))
			return
		}
		writeJSON(w, http.StatusOK, fmt.Sprintf(`{"token_type":"Bearer","expires_in":3599,"ext_expires_in":3599,"access_token":"access-%d"}`, n))
	})
	ts.Server = httptest.NewTLSServer(mux)
	t.Cleanup(ts.Close)
	return ts
}

func (ts *tokenServer) checkClient(r *http.Request) error {
	if err := r.ParseForm(); err != nil {
		return err
	}
	if r.PostForm.Get("grant_type") != "client_credentials" || r.PostForm.Get("client_id") != testClientID {
		return fmt.Errorf("unexpected grant %q or client %q", r.PostForm.Get("grant_type"), r.PostForm.Get("client_id"))
	}
	if !strings.Contains(r.PostForm.Get("scope"), testScope) {
		return fmt.Errorf("scope %q lacks %s", r.PostForm.Get("scope"), testScope)
	}
	if secret := r.PostForm.Get("client_secret"); secret != "" {
		if secret != testSecret {
			return fmt.Errorf("invalid client secret provided")
		}
		return nil
	}
	if ts.cert == nil {
		return fmt.Errorf("no client secret")
	}
	if r.PostForm.Get("client_assertion_type") != "urn:ietf:params:oauth:client-assertion-type:jwt-bearer" {
		return fmt.Errorf("no client assertion")
	}
	return verifyAssertion(r.PostForm.Get("client_assertion"), ts.cert, ts.URL+r.URL.Path)
}

// verifyAssertion checks the client-assertion JWT's signature against cert
// and its iss, sub and aud claims.
func verifyAssertion(jwt string, cert *x509.Certificate, tokenURL string) error {
	parts := strings.Split(jwt, ".")
	if len(parts) != 3 {
		return fmt.Errorf("assertion is not a JWT")
	}
	var header struct{ Alg string }
	var claims struct{ Iss, Sub, Aud string }
	for i, v := range []any{&header, &claims} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil {
			return err
		}
		if err := json.Unmarshal(raw, v); err != nil {
			return err
		}
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil {
		return err
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	pub := cert.PublicKey.(*rsa.PublicKey)
	switch header.Alg {
	case "PS256":
		err = rsa.VerifyPSS(pub, crypto.SHA256, digest[:], sig, &rsa.PSSOptions{SaltLength: rsa.PSSSaltLengthAuto})
	case "RS256":
		err = rsa.VerifyPKCS1v15(pub, crypto.SHA256, digest[:], sig)
	default:
		err = fmt.Errorf("unexpected alg %q", header.Alg)
	}
	if err != nil {
		return fmt.Errorf("assertion signature: %w", err)
	}
	if claims.Iss != testClientID || claims.Sub != testClientID || claims.Aud != tokenURL {
		return fmt.Errorf("assertion claims iss=%q sub=%q aud=%q", claims.Iss, claims.Sub, claims.Aud)
	}
	return nil
}

// testRSACert is one self-signed RSA 2048 certificate per test binary: key
// generation is slow on a shared machine.
var testRSACert = sync.OnceValues(func() (*x509.Certificate, []byte) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	cert, certPEM := selfSigned(key, &key.PublicKey)
	keyDER, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic(err)
	}
	return cert, append(certPEM, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...)
})

func selfSigned(key crypto.Signer, pub crypto.PublicKey) (*x509.Certificate, []byte) {
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: "o365connect test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, key)
	if err != nil {
		panic(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func msalConfigFor(ts *tokenServer) MSALConfig {
	return MSALConfig{
		TenantID:                 testTenant,
		ClientID:                 testClientID,
		LoginURL:                 ts.URL,
		Scope:                    testScope,
		HTTPClient:               ts.Client(),
		DisableInstanceDiscovery: true,
	}
}

func TestMSALTokenSource(t *testing.T) {
	cert, certPEM := testRSACert()
	tests := []struct {
		name string
		edit func(*MSALConfig)
	}{
		{"client secret", func(c *MSALConfig) { c.ClientSecret = testSecret }},
		{"certificate", func(c *MSALConfig) { c.CertificatePEM = certPEM }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ts := newTokenServer(t, cert)
			cfg := msalConfigFor(ts)
			tt.edit(&cfg)
			src, err := NewMSALTokenSource(cfg)
			require.NoError(t, err)
			ctx := t.Context()

			first, err := src.Token(ctx)
			require.NoError(t, err)
			assert.Equal(t, "access-1", first)
			cached, err := src.Token(ctx)
			require.NoError(t, err)
			assert.Equal(t, first, cached)
			assert.Equal(t, int32(1), ts.requests.Load(), "the second Token is served from MSAL's cache")

			src.Invalidate("some-older-token")
			cached, err = src.Token(ctx)
			require.NoError(t, err)
			assert.Equal(t, first, cached, "invalidating another token keeps the cache")
			assert.Equal(t, int32(1), ts.requests.Load())

			src.Invalidate(first)
			second, err := src.Token(ctx)
			require.NoError(t, err)
			assert.Equal(t, "access-2", second)
			assert.Equal(t, int32(2), ts.requests.Load(), "Invalidate leads to a second network request")

			again, err := src.Token(ctx)
			require.NoError(t, err)
			assert.Equal(t, second, again, "the new token is cached in turn")
			assert.Equal(t, int32(2), ts.requests.Load())
		})
	}
}

func TestMSALTokenSourceErrorsHideTheSecret(t *testing.T) {
	ts := newTokenServer(t, nil)
	cfg := msalConfigFor(ts)
	cfg.ClientSecret = "wrong-" + testSecret
	src, err := NewMSALTokenSource(cfg)
	require.NoError(t, err)

	_, err = src.Token(t.Context())

	require.Error(t, err)
	assert.Contains(t, err.Error(), "AADSTS7000215", "operators need Entra's code")
	assert.Contains(t, err.Error(), ts.URL+"/"+testTenant)
	assert.NotContains(t, err.Error(), testSecret)
}

func TestMSALTokenSourceWithAPIClient(t *testing.T) {
	ts := newTokenServer(t, nil)
	cfg := msalConfigFor(ts)
	cfg.ClientSecret = testSecret
	src, err := NewMSALTokenSource(cfg)
	require.NoError(t, err)
	api := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request, n int) {
		if n == 1 {
			writeJSON(w, http.StatusUnauthorized, `{"Message":"Authorization has been denied for this request."}`)
			return
		}
		writeJSON(w, http.StatusOK, `[]`)
	})
	c := newTestClient(t, api, src)

	_, err = c.ListSubscriptions(t.Context())

	require.NoError(t, err)
	seen := api.requests()
	require.Len(t, seen, 2)
	assert.Equal(t, "Bearer access-1", seen[0].Authorization)
	assert.Equal(t, "Bearer access-2", seen[1].Authorization, "a 401 gets a token from the network, not MSAL's cache")
}

func TestNewMSALTokenSourceRefusesBadCredentials(t *testing.T) {
	_, rsaPEM := testRSACert()
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	_, ecCertPEM := selfSigned(ecKey, &ecKey.PublicKey)
	ecSEC1, err := x509.MarshalECPrivateKey(ecKey)
	require.NoError(t, err)
	ecPKCS8, err := x509.MarshalPKCS8PrivateKey(ecKey)
	require.NoError(t, err)
	rsaCertOnly := rsaPEM[:strings.Index(string(rsaPEM), "-----BEGIN PRIVATE KEY")]

	tests := []struct {
		name        string
		secret      string
		pem         []byte
		errContains string
	}{
		{"neither", "", nil, "neither a client secret nor a certificate"},
		{"both", testSecret, rsaPEM, "set only one"},
		{"encrypted PKCS#8 key", "", append(append([]byte{}, rsaCertOnly...),
			pem.EncodeToMemory(&pem.Block{Type: "ENCRYPTED PRIVATE KEY", Bytes: []byte{1, 2, 3}})...), "certificate_file: the private key is encrypted"},
		{"legacy encrypted key", "", append(append([]byte{}, rsaCertOnly...),
			pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Headers: map[string]string{"Proc-Type": "4,ENCRYPTED", "DEK-Info": "AES-256-CBC,00"}, Bytes: []byte{1}})...),
			"certificate_file: the private key is encrypted"},
		{"EC key (SEC 1)", "", append(append([]byte{}, ecCertPEM...), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: ecSEC1})...),
			"certificate_file: the private key is an EC key"},
		{"EC key (PKCS#8)", "", append(append([]byte{}, ecCertPEM...), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecPKCS8})...),
			"certificate_file: the private key is *ecdsa.PrivateKey"},
		{"no key", "", rsaCertOnly, "certificate_file: no private key found"},
		{"not PEM", "", []byte("hello"), "certificate_file: no certificates found"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewMSALTokenSource(MSALConfig{
				TenantID: testTenant, ClientID: testClientID, LoginURL: "https://login.microsoftonline.com", Scope: testScope,
				ClientSecret: tt.secret, CertificatePEM: tt.pem,
			})
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.errContains)
			assert.NotContains(t, err.Error(), testSecret)
			assert.NotContains(t, err.Error(), "PRIVATE KEY-----")
		})
	}

	_, err = NewMSALTokenSource(MSALConfig{TenantID: testTenant, ClientID: testClientID, Scope: testScope, ClientSecret: testSecret})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "login URL is empty")
}

// TestMSALTokenSourceConcurrent401s runs several requests at once whose
// first token is rejected, for the race detector and for the outcome.
func TestMSALTokenSourceConcurrent401s(t *testing.T) {
	ts := newTokenServer(t, nil)
	cfg := msalConfigFor(ts)
	cfg.ClientSecret = testSecret
	src, err := NewMSALTokenSource(cfg)
	require.NoError(t, err)
	api := newFakeAPI(t, func(w http.ResponseWriter, r *http.Request, _ int) {
		if r.Header.Get("Authorization") == "Bearer access-1" {
			writeJSON(w, http.StatusUnauthorized, `{"Message":"Authorization has been denied for this request."}`)
			return
		}
		writeJSON(w, http.StatusOK, `[]`)
	})
	c := newTestClient(t, api, src)
	const workers = 8

	var wg sync.WaitGroup
	errs := make([]error, workers)
	for i := range workers {
		wg.Go(func() { _, errs[i] = c.ListSubscriptions(t.Context()) })
	}
	wg.Wait()

	for i, err := range errs {
		assert.NoError(t, err, "worker %d", i)
	}
	assert.LessOrEqual(t, ts.requests.Load(), int32(1+workers), "at most one refetch per rejected request")
}
