package o365sim

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

const (
	grantClientCredentials = "client_credentials"
	assertionTypeJWTBearer = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
	// assertionSkew is the clock skew tolerated on client-assertion exp/nbf.
	assertionSkew = 5 * time.Minute
)

// entraError is the Entra ID error body (mgmt-api §2.2). The AADSTS codes
// for bad secrets, unknown apps and tenants are the field-reported ones; the
// assertion codes are the ones Entra documents for those failures.
type entraError struct {
	Status      int
	Error       string
	Code        int
	Description string
}

func (s *Server) writeEntraError(w http.ResponseWriter, e entraError) {
	body := map[string]any{
		"error":             e.Error,
		"error_description": fmt.Sprintf("AADSTS%d: %s Trace ID: %s Timestamp: %s", e.Code, e.Description, newGUID(), s.now().Format("2006-01-02 15:04:05Z")),
		"error_codes":       []int{e.Code},
		"timestamp":         s.now().Format("2006-01-02 15:04:05Z"),
		"trace_id":          newGUID(),
		"correlation_id":    newGUID(),
	}
	writeJSON(w, e.Status, body)
}

func (s *Server) errUnknownTenant(tenant string) entraError {
	return entraError{http.StatusBadRequest, "invalid_request", 90002, fmt.Sprintf("Tenant '%s' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.", tenant)}
}

func (s *Server) knownTenant(t string) bool { return strings.EqualFold(t, s.cfg.TenantID) }

// handleOpenIDConfig serves the OIDC discovery document MSAL fetches from
// {authority}/v2.0/.well-known/openid-configuration. MSAL needs non-empty
// issuer, token_endpoint and authorization_endpoint, and checks that the
// issuer's host:port is the authority's (mgmt-api §9), so every URL is built
// on this server's own base URL.
func (s *Server) handleOpenIDConfig(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	if !s.knownTenant(tenant) {
		s.writeEntraError(w, s.errUnknownTenant(tenant))
		return
	}
	v2 := strings.Contains(r.URL.Path, "/v2.0/")
	base := s.baseURL(r) + "/" + tenant
	doc := map[string]any{
		"token_endpoint":                        base + "/oauth2/v2.0/token",
		"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
		"issuer":                                base + "/v2.0",
		"jwks_uri":                              s.baseURL(r) + "/" + tenant + "/discovery/v2.0/keys",
		"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
		"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"tenant_region_scope":                   "EU",
		"cloud_instance_name":                   "microsoftonline.com",
	}
	if !v2 {
		doc["token_endpoint"] = base + "/oauth2/token"
		doc["authorization_endpoint"] = base + "/oauth2/authorize"
		doc["issuer"] = "https://sts.windows.net/" + s.cfg.TenantID + "/"
	}
	writeJSON(w, http.StatusOK, doc)
}

// handleToken serves both token endpoints: v1 /oauth2/token (resource,
// numbers as strings) and v2 /oauth2/v2.0/token (scope, numbers as ints),
// mgmt-api §2.2.
func (s *Server) handleToken(w http.ResponseWriter, r *http.Request) {
	v2 := strings.Contains(r.URL.Path, "/v2.0/")
	if f := s.takeFault(OpToken, "", ""); f != nil {
		switch f.Kind {
		case FaultInvalidClient:
			s.writeEntraError(w, entraError{http.StatusUnauthorized, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '" + s.cfg.ClientID + "'."})
		case FaultThrottle:
			s.writeRetryAfter(w, f)
			s.writeEntraError(w, entraError{f.status(http.StatusTooManyRequests), "temporarily_unavailable", 50196, "The server has been throttled."})
		case FaultInternalError:
			s.writeEntraError(w, entraError{f.status(http.StatusInternalServerError), "server_error", 90033, "A transient error has occurred. Please try again."})
		default:
			s.writeGenericFault(w, f)
		}
		return
	}
	tenant := r.PathValue("tenant")
	if !s.knownTenant(tenant) {
		s.writeEntraError(w, s.errUnknownTenant(tenant))
		return
	}
	if err := r.ParseForm(); err != nil {
		s.writeEntraError(w, entraError{http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'."})
		return
	}
	form := r.PostForm
	if gt := form.Get("grant_type"); gt != grantClientCredentials {
		s.writeEntraError(w, entraError{http.StatusBadRequest, "unsupported_grant_type", 70003, fmt.Sprintf("The app requested an unsupported grant type '%s'.", gt)})
		return
	}
	clientID := form.Get("client_id")
	if !strings.EqualFold(clientID, s.cfg.ClientID) {
		s.writeEntraError(w, entraError{http.StatusBadRequest, "unauthorized_client", 700016, fmt.Sprintf("Application with identifier '%s' was not found in the directory '%s'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.", clientID, tenant)})
		return
	}
	if v2 {
		if e, ok := checkScope(form.Get("scope")); !ok {
			s.writeEntraError(w, e)
			return
		}
	} else if res := strings.TrimSuffix(form.Get("resource"), "/"); !strings.EqualFold(res, Resource) {
		s.writeEntraError(w, entraError{http.StatusBadRequest, "invalid_resource", 500011, fmt.Sprintf("The resource principal named %s was not found in the tenant named %s.", res, tenant)})
		return
	}
	acr := "1"
	switch {
	case form.Get("client_assertion") != "":
		if e, ok := s.checkAssertion(r, form.Get("client_assertion_type"), form.Get("client_assertion")); !ok {
			s.writeEntraError(w, e)
			return
		}
		acr = "2"
	case form.Has("client_secret"):
		if form.Get("client_secret") != s.cfg.ClientSecret {
			s.writeEntraError(w, entraError{http.StatusUnauthorized, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '" + s.cfg.ClientID + "'."})
			return
		}
	default:
		s.writeEntraError(w, entraError{http.StatusUnauthorized, "invalid_client", 7000216, "'client_assertion', 'client_secret' or 'request' is required for the 'client_credentials' grant type."})
		return
	}
	now := s.now()
	tok, err := s.issueToken(now, acr)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	s.mu.Lock()
	s.stats.TokensIssued++
	s.mu.Unlock()
	secs := int64(s.cfg.TokenLifetime / time.Second)
	w.Header().Set("Cache-Control", "no-store, no-cache")
	if v2 {
		// No "scope" field: MSAL fails with "declined scopes" when one is
		// present without every requested scope (mgmt-api §9).
		writeJSON(w, http.StatusOK, map[string]any{
			"token_type": "Bearer", "expires_in": secs, "ext_expires_in": secs, "access_token": tok,
		})
		return
	}
	// v1 responses carry numbers as strings (mgmt-api §2.2).
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type":     "Bearer",
		"expires_in":     strconv.FormatInt(secs, 10),
		"ext_expires_in": strconv.FormatInt(secs, 10),
		"expires_on":     strconv.FormatInt(now.Unix()+secs, 10),
		"not_before":     strconv.FormatInt(now.Unix(), 10),
		"resource":       Resource,
		"access_token":   tok,
	})
}

// checkScope accepts the resource's .default scope plus the OIDC scopes
// MSAL always appends (openid offline_access profile).
func checkScope(scope string) (entraError, bool) {
	found := false
	for _, sc := range strings.Fields(scope) {
		switch {
		case strings.EqualFold(sc, Scope):
			found = true
		case sc == "openid", sc == "offline_access", sc == "profile":
		default:
			return entraError{http.StatusBadRequest, "invalid_scope", 70011, fmt.Sprintf("The provided request must include a 'scope' input parameter. The provided value for the input parameter 'scope' is not valid. The scope %s is not valid.", scope)}, false
		}
	}
	if !found {
		return entraError{http.StatusBadRequest, "invalid_scope", 1002012, fmt.Sprintf("The provided value for scope %s is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).", scope)}, false
	}
	return entraError{}, true
}

// checkAssertion verifies a client-assertion JWT (mgmt-api §2.3): RS256 or
// PS256 signed by the registered certificate, identified by x5t (SHA-1) or
// x5t#S256 in std or url base64, aud = this token endpoint, iss = sub =
// client ID, within exp/nbf.
func (s *Server) checkAssertion(r *http.Request, typ, assertion string) (entraError, bool) {
	bad := func(code int, desc string) (entraError, bool) {
		return entraError{http.StatusUnauthorized, "invalid_client", code, desc}, false
	}
	if typ != assertionTypeJWTBearer {
		return entraError{http.StatusBadRequest, "invalid_request", 700023, fmt.Sprintf("Invalid client_assertion_type '%s'.", typ)}, false
	}
	cert := s.cfg.ClientCertificate
	if cert == nil {
		return bad(700027, "Client assertion failed signature validation: no certificate is registered on the application.")
	}
	p, err := parseJWT(assertion)
	if err != nil {
		return bad(50027, "JWT token is invalid or malformed.")
	}
	s1, s256 := thumbprints(cert)
	var matched bool
	if t := p.headerString("x5t#S256"); t != "" {
		got, ok := decodeAnyBase64(t)
		matched = ok && string(got) == string(s256)
	} else if t := p.headerString("x5t"); t != "" {
		got, ok := decodeAnyBase64(t)
		matched = ok && string(got) == string(s1)
	}
	if !matched {
		return bad(700027, "The certificate with identifier used to sign the client assertion is not registered on application.")
	}
	pub, ok := cert.PublicKey.(*rsa.PublicKey)
	if !ok {
		return bad(700027, "Client assertion failed signature validation: the registered certificate has no RSA key.")
	}
	if err := p.verifyRSA(pub); err != nil {
		return bad(700027, "Client assertion failed signature validation.")
	}
	aud := p.claimString("aud")
	if !s.isTokenEndpoint(r, aud) {
		return bad(700027, fmt.Sprintf("Client assertion audience claim '%s' does not match the token endpoint.", aud))
	}
	if iss, sub := p.claimString("iss"), p.claimString("sub"); !strings.EqualFold(iss, s.cfg.ClientID) || !strings.EqualFold(sub, s.cfg.ClientID) {
		return bad(700027, "Client assertion issuer and subject must be the client ID.")
	}
	// The assertion is signed with the client's wall clock, not the
	// simulated one, so it is checked against time.Now.
	now := time.Now().Unix()
	exp, okExp := p.claimInt("exp")
	nbf, okNbf := p.claimInt("nbf")
	if !okExp || now > exp+int64(assertionSkew/time.Second) || (okNbf && now < nbf-int64(assertionSkew/time.Second)) {
		return bad(700024, "Client assertion is not within its valid time range.")
	}
	return entraError{}, true
}

// isTokenEndpoint accepts the v1 or v2 token URL of this tenant, since
// clients build aud from whichever endpoint they were configured with.
func (s *Server) isTokenEndpoint(r *http.Request, aud string) bool {
	base := s.baseURL(r) + "/" + s.cfg.TenantID
	for _, u := range []string{base + "/oauth2/token", base + "/oauth2/v2.0/token"} {
		if strings.EqualFold(strings.SplitN(aud, "?", 2)[0], u) {
			return true
		}
	}
	return false
}

// issueToken makes the access token: a JWT shaped like Entra's v1 app-only
// tokens (aud, iss sts.windows.net, tid, roles), signed HS256 with a key
// that only this server knows.
func (s *Server) issueToken(now time.Time, acr string) (string, error) {
	claims := map[string]any{
		"aud":      Resource,
		"iss":      "https://sts.windows.net/" + s.cfg.TenantID + "/",
		"iat":      now.Unix(),
		"nbf":      now.Unix(),
		"exp":      now.Add(s.cfg.TokenLifetime).Unix(),
		"appid":    s.cfg.ClientID,
		"appidacr": acr,
		"idtyp":    "app",
		"oid":      guidFrom(uint64(s.cfg.Seed), 0x0b1d),
		"sub":      guidFrom(uint64(s.cfg.Seed), 0x0b1d),
		"tid":      s.cfg.TenantID,
		"roles":    s.cfg.Roles,
		"uti":      newGUID(),
		"ver":      "1.0",
	}
	return signHS256(s.tokKey, map[string]any{"typ": "JWT", "alg": "HS256"}, claims)
}

// AccessToken issues a valid access token directly, for tests that do not
// exercise the token endpoints.
func (s *Server) AccessToken() string {
	tok, err := s.issueToken(s.now(), "1")
	if err != nil {
		panic(err) // only fails if json.Marshal of plain maps fails
	}
	return tok
}

// tokenClaims is what the API needs from a verified bearer token.
type tokenClaims struct {
	tid   string
	roles map[string]bool
}

func (s *Server) verifyAccessToken(tok string) (tokenClaims, bool) {
	p, err := parseJWT(tok)
	if err != nil || p.verifyHS256(s.tokKey) != nil {
		return tokenClaims{}, false
	}
	if p.claimString("aud") != Resource {
		return tokenClaims{}, false
	}
	exp, ok := p.claimInt("exp")
	if !ok || s.now().Unix() >= exp {
		return tokenClaims{}, false
	}
	c := tokenClaims{tid: p.claimString("tid"), roles: map[string]bool{}}
	if rs, ok := p.claims["roles"].([]any); ok {
		for _, r := range rs {
			if s, ok := r.(string); ok {
				c.roles[s] = true
			}
		}
	}
	return c, true
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func newGUID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return formatGUID(b)
}

func formatGUID(b [16]byte) string {
	h := hex.EncodeToString(b[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}
