package o365sim

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1" //nolint:gosec // x5t is SHA-1 by definition
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func (e *env) postToken(tenant, path string, form url.Values) resp {
	e.t.Helper()
	req, err := http.NewRequestWithContext(e.t.Context(), http.MethodPost, e.srv.URL()+"/"+tenant+path, strings.NewReader(form.Encode()))
	require.NoError(e.t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	res, err := e.hc.Do(req)
	require.NoError(e.t, err)
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return resp{status: res.StatusCode, header: res.Header, body: b, err: err}
}

// form builds a token request body; an empty value deletes the key.
func form(kv ...string) url.Values {
	f := url.Values{"grant_type": {"client_credentials"}, "client_id": {DefaultClientID}, "client_secret": {DefaultClientSecret}}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			f.Del(kv[i])
		} else {
			f.Set(kv[i], kv[i+1])
		}
	}
	return f
}

func entraErr(t *testing.T, r resp) (string, string) {
	t.Helper()
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
		Codes       []int  `json:"error_codes"`
	}
	require.NoError(t, json.Unmarshal(r.body, &body), string(r.body))
	return body.Error, body.Description
}

func TestTokenEndpoints(t *testing.T) {
	e := newEnv(t, Config{})
	tenant := e.srv.TenantID()

	r := e.postToken(tenant, "/oauth2/token", form("resource", Resource))
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	var v1 map[string]any
	require.NoError(t, json.Unmarshal(r.body, &v1))
	assert.Equal(t, "3599", v1["expires_in"], "v1 numbers are strings")
	assert.Equal(t, Resource, v1["resource"])
	assert.IsType(t, "", v1["expires_on"])
	e.token = v1["access_token"].(string)
	assert.Equal(t, http.StatusOK, e.api(http.MethodGet, "subscriptions/list", nil).status, "a v1 token works on the API")

	r = e.postToken(tenant, "/oauth2/v2.0/token", form("scope", Scope+" openid offline_access profile"))
	require.Equal(t, http.StatusOK, r.status, string(r.body))
	var v2 map[string]any
	require.NoError(t, json.Unmarshal(r.body, &v2))
	assert.Equal(t, float64(3599), v2["expires_in"], "v2 numbers are ints")
	assert.NotContains(t, v2, "scope")
	claims := decodeClaims(t, v2["access_token"].(string))
	assert.Equal(t, Resource, claims["aud"])
	assert.Equal(t, DefaultTenantID, claims["tid"])
	assert.ElementsMatch(t, []any{RoleRead, RoleReadDlp}, claims["roles"])

	for _, tc := range []struct {
		name, tenant, path string
		form               url.Values
		status             int
		err, code          string
	}{
		{"wrong secret", tenant, "/oauth2/v2.0/token", form("scope", Scope, "client_secret", "nope"), 401, "invalid_client", "AADSTS7000215"},
		{"unknown client", tenant, "/oauth2/v2.0/token", form("scope", Scope, "client_id", "11111111-1111-1111-1111-111111111111"), 400, "unauthorized_client", "AADSTS700016"},
		{"unknown tenant", "22222222-2222-2222-2222-222222222222", "/oauth2/token", form("resource", Resource), 400, "invalid_request", "AADSTS90002"},
		{"no credential", tenant, "/oauth2/token", form("resource", Resource, "client_secret", ""), 401, "invalid_client", "AADSTS7000216"},
		{"scope without .default", tenant, "/oauth2/v2.0/token", form("scope", "https://manage.office.com/ActivityFeed.Read"), 400, "invalid_scope", "AADSTS"},
		{"other resource", tenant, "/oauth2/token", form("resource", "https://graph.microsoft.com"), 400, "invalid_resource", "AADSTS500011"},
		{"bad grant", tenant, "/oauth2/token", form("resource", Resource, "grant_type", "password"), 400, "unsupported_grant_type", "AADSTS70003"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.postToken(tc.tenant, tc.path, tc.form)
			assert.Equal(t, tc.status, r.status)
			errName, desc := entraErr(t, r)
			assert.Equal(t, tc.err, errName)
			assert.Contains(t, desc, tc.code)
		})
	}
	st := e.srv.Stats()
	assert.Equal(t, 2, st.TokensIssued)
	assert.Equal(t, 9, st.Count(OpToken))
	assert.Equal(t, 7, st.Count(OpToken, 400, 401))
}

func TestOpenIDConfiguration(t *testing.T) {
	e := newEnv(t, Config{})
	r := e.do(http.MethodGet, e.srv.Authority()+"/v2.0/.well-known/openid-configuration", nil)
	require.Equal(t, http.StatusOK, r.status)
	var doc map[string]any
	require.NoError(t, json.Unmarshal(r.body, &doc))
	assert.Equal(t, e.srv.Authority()+"/v2.0", doc["issuer"])
	assert.Equal(t, e.srv.Authority()+"/oauth2/v2.0/token", doc["token_endpoint"])
	assert.NotEmpty(t, doc["authorization_endpoint"])
}

// assertion signs a client-assertion JWT the way MSAL (PS256, x5t#S256 in
// std base64) or ADAL/the doc sample (RS256, x5t in base64url) do.
func assertion(t *testing.T, cert *x509.Certificate, key *rsa.PrivateKey, alg, aud string, exp time.Time) string {
	t.Helper()
	s1, s256 := sha1.Sum(cert.Raw), sha256.Sum256(cert.Raw) //nolint:gosec // x5t
	hdr := map[string]any{"alg": alg, "typ": "JWT"}
	if alg == "PS256" {
		hdr["x5t#S256"] = base64.StdEncoding.EncodeToString(s256[:])
	} else {
		hdr["x5t"] = base64.RawURLEncoding.EncodeToString(s1[:])
	}
	claims := map[string]any{"aud": aud, "iss": DefaultClientID, "sub": DefaultClientID, "jti": newGUID(), "nbf": time.Now().Unix(), "exp": exp.Unix()}
	h, _ := json.Marshal(hdr)
	c, _ := json.Marshal(claims)
	in := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	sum := sha256.Sum256([]byte(in))
	var sig []byte
	var err error
	if alg == "PS256" {
		sig, err = rsa.SignPSS(rand.Reader, key, crypto.SHA256, sum[:], nil)
	} else {
		sig, err = rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	}
	require.NoError(t, err)
	return in + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestClientAssertion(t *testing.T) {
	pemBytes, cert, err := GenerateClientCertificate()
	require.NoError(t, err)
	certs, key, err := confidential.CertFromPEM(pemBytes, "")
	require.NoError(t, err)
	require.Len(t, certs, 1)
	rsaKey := key.(*rsa.PrivateKey)
	_, otherCert, err := GenerateClientCertificate()
	require.NoError(t, err)

	e := newEnv(t, Config{ClientCertificate: cert})
	v1URL := e.srv.Authority() + "/oauth2/token"
	v2URL := e.srv.Authority() + "/oauth2/v2.0/token"
	soon := time.Now().Add(10 * time.Minute)
	for _, tc := range []struct {
		name      string
		path      string
		assertion string
		status    int
		code      string
	}{
		{"PS256 x5t#S256 std base64", "/oauth2/v2.0/token", assertion(t, cert, rsaKey, "PS256", v2URL, soon), 200, ""},
		{"RS256 x5t base64url", "/oauth2/token", assertion(t, cert, rsaKey, "RS256", v1URL, soon), 200, ""},
		{"unregistered cert", "/oauth2/v2.0/token", assertion(t, otherCert, rsaKey, "PS256", v2URL, soon), 401, "AADSTS700027"},
		{"bad signature", "/oauth2/v2.0/token", assertion(t, cert, mustKey(t), "PS256", v2URL, soon), 401, "AADSTS700027"},
		{"bad aud", "/oauth2/v2.0/token", assertion(t, cert, rsaKey, "PS256", "https://login.microsoftonline.com/x/oauth2/v2.0/token", soon), 401, "AADSTS700027"},
		{"expired", "/oauth2/v2.0/token", assertion(t, cert, rsaKey, "PS256", v2URL, time.Now().Add(-time.Hour)), 401, "AADSTS700024"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := form("client_secret", "", "client_assertion_type", assertionTypeJWTBearer, "client_assertion", tc.assertion, "scope", Scope, "resource", Resource)
			r := e.postToken(e.srv.TenantID(), tc.path, f)
			require.Equal(t, tc.status, r.status, string(r.body))
			if tc.code != "" {
				errName, desc := entraErr(t, r)
				assert.Equal(t, "invalid_client", errName)
				assert.Contains(t, desc, tc.code)
			}
		})
	}
}

var testKey *rsa.PrivateKey

func mustKey(t *testing.T) *rsa.PrivateKey {
	t.Helper()
	if testKey == nil {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		require.NoError(t, err)
		testKey = k
	}
	return testKey
}

// TestMSAL checks the simulator against the real MSAL Go client, the way
// the connector uses it (foundations.md trap 3, option a).
func TestMSAL(t *testing.T) {
	pemBytes, cert, err := GenerateClientCertificate()
	require.NoError(t, err)
	e := newEnv(t, Config{ClientCertificate: cert})

	certs, key, err := confidential.CertFromPEM(pemBytes, "")
	require.NoError(t, err)
	certCred, err := confidential.NewCredFromCert(certs, key)
	require.NoError(t, err)
	secretCred, err := confidential.NewCredFromSecret(DefaultClientSecret)
	require.NoError(t, err)
	badCred, err := confidential.NewCredFromSecret("wrong")
	require.NoError(t, err)

	for name, cred := range map[string]confidential.Credential{"secret": secretCred, "certificate": certCred} {
		t.Run(name, func(t *testing.T) {
			app, err := confidential.New(e.srv.Authority(), DefaultClientID, cred,
				confidential.WithHTTPClient(e.srv.HTTPClient()), confidential.WithInstanceDiscovery(false))
			require.NoError(t, err)
			res, err := app.AcquireTokenByCredential(t.Context(), []string{Scope})
			require.NoError(t, err)
			e.token = res.AccessToken
			assert.Equal(t, http.StatusOK, e.api(http.MethodGet, "subscriptions/list", nil).status)
			res2, err := app.AcquireTokenByCredential(t.Context(), []string{Scope})
			require.NoError(t, err)
			assert.Equal(t, res.AccessToken, res2.AccessToken, "second call is served from MSAL's cache")
		})
	}
	app, err := confidential.New(e.srv.Authority(), DefaultClientID, badCred,
		confidential.WithHTTPClient(e.srv.HTTPClient()), confidential.WithInstanceDiscovery(false))
	require.NoError(t, err)
	_, err = app.AcquireTokenByCredential(t.Context(), []string{Scope})
	require.ErrorContains(t, err, "AADSTS7000215")
}

func decodeClaims(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	require.Len(t, parts, 3)
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	return m
}
