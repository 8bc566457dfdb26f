package o365api

import (
	"context"
	"crypto/rsa"
	"encoding/pem"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/AzureAD/microsoft-authentication-library-for-go/apps/confidential"
)

// TokenSource hands out bearer tokens for the Activity API.
type TokenSource interface {
	// Token returns a valid access token, from cache when possible.
	Token(ctx context.Context) (string, error)
	// Invalidate tells the source that token was rejected (HTTP 401), so the
	// next Token call must fetch a new one rather than return it again.
	Invalidate(token string)
}

// MSALConfig configures NewMSALTokenSource: an Entra ID app registration
// with either a client secret or a certificate.
type MSALConfig struct {
	TenantID string
	ClientID string
	LoginURL string // scheme + host of Entra ID, e.g. https://login.microsoftonline.com; must be https
	Scope    string // e.g. Endpoints.Scope(): https://manage.office.com/.default
	// ClientSecret and CertificatePEM are alternatives: set exactly one.
	ClientSecret string
	// CertificatePEM holds the certificate and its unencrypted RSA private key
	// (PKCS#1 or PKCS#8), as PEM blocks in one file.
	CertificatePEM []byte
	HTTPClient     *http.Client // nil means MSAL's default
	// DisableInstanceDiscovery skips MSAL's authority validation against
	// login.microsoftonline.com, which is needed for a login host that
	// Microsoft does not know, such as a local simulator.
	DisableInstanceDiscovery bool
}

// NewMSALTokenSource returns a TokenSource that gets app-only tokens with the
// client-credentials grant. It does no network I/O until the first Token.
func NewMSALTokenSource(cfg MSALConfig) (TokenSource, error) {
	for _, f := range []struct{ name, value string }{
		{"tenant ID", cfg.TenantID}, {"client ID", cfg.ClientID}, {"login URL", cfg.LoginURL}, {"scope", cfg.Scope},
	} {
		if strings.TrimSpace(f.value) == "" {
			return nil, fmt.Errorf("creating token source: %s is empty", f.name)
		}
	}
	cred, err := msalCredential(cfg.ClientSecret, cfg.CertificatePEM)
	if err != nil {
		return nil, fmt.Errorf("creating token source: %w", err)
	}
	authority := strings.TrimRight(cfg.LoginURL, "/") + "/" + cfg.TenantID
	var opts []confidential.Option
	if cfg.HTTPClient != nil {
		opts = append(opts, confidential.WithHTTPClient(cfg.HTTPClient))
	}
	if cfg.DisableInstanceDiscovery {
		opts = append(opts, confidential.WithInstanceDiscovery(false))
	}
	s := &msalTokenSource{
		authority: authority,
		scopes:    []string{cfg.Scope},
		newClient: func() (*confidential.Client, error) {
			c, err := confidential.New(authority, cfg.ClientID, cred, opts...)
			return &c, err
		},
	}
	if s.client, err = s.newClient(); err != nil {
		return nil, fmt.Errorf("creating token source for %s: %w", authority, err)
	}
	return s, nil
}

// msalCredential builds the one credential cfg names. Its errors never
// contain the secret or key material.
func msalCredential(secret string, certPEM []byte) (confidential.Credential, error) {
	switch {
	case secret != "" && len(certPEM) > 0:
		return confidential.Credential{}, errors.New("both a client secret and a certificate are set: set only one")
	case secret != "":
		cred, err := confidential.NewCredFromSecret(secret)
		if err != nil {
			return confidential.Credential{}, errors.New("invalid client secret")
		}
		return cred, nil
	case len(certPEM) > 0:
		return certCredential(certPEM)
	default:
		return confidential.Credential{}, errors.New("neither a client secret nor a certificate is set: set one")
	}
}

// certCredential checks what confidential.CertFromPEM silently ignores: it
// skips encrypted and EC key blocks and then only says "no private key found".
func certCredential(certPEM []byte) (confidential.Credential, error) {
	for rest := certPEM; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		_, legacyEncrypted := block.Headers["DEK-Info"]
		switch {
		case block.Type == "ENCRYPTED PRIVATE KEY" || legacyEncrypted:
			return confidential.Credential{}, errors.New("certificate_file: the private key is encrypted; " +
				"provide it unencrypted (openssl pkcs8 -topk8 -nocrypt) and protect the file with permissions")
		case block.Type == "EC PRIVATE KEY":
			return confidential.Credential{}, errors.New("certificate_file: the private key is an EC key; " +
				"Entra ID certificate credentials need an RSA key")
		}
	}
	certs, key, err := confidential.CertFromPEM(certPEM, "")
	if err != nil {
		return confidential.Credential{}, fmt.Errorf("certificate_file: %w", err)
	}
	if _, ok := key.(*rsa.PrivateKey); !ok {
		return confidential.Credential{}, fmt.Errorf("certificate_file: the private key is %T; "+
			"Entra ID certificate credentials need an RSA key", key)
	}
	cred, err := confidential.NewCredFromCert(certs, key)
	if err != nil {
		return confidential.Credential{}, fmt.Errorf("certificate_file: %w", err)
	}
	return cred, nil
}

// msalTokenSource wraps a confidential.Client, whose AcquireTokenByCredential
// serves from its in-memory cache (since MSAL v1.6) until the token is 5
// minutes from expiry.
type msalTokenSource struct {
	authority string
	scopes    []string
	newClient func() (*confidential.Client, error)

	mu       sync.Mutex
	client   *confidential.Client
	rejected string // the last token the API answered 401 to
}

// Token returns MSAL's cached token, or a fresh one when the cached token is
// the one last passed to Invalidate.
func (s *msalTokenSource) Token(ctx context.Context) (string, error) {
	s.mu.Lock()
	client := s.client
	s.mu.Unlock()
	res, err := client.AcquireTokenByCredential(ctx, s.scopes)
	if err != nil {
		return "", fmt.Errorf("acquiring token from %s: %w", s.authority, err)
	}

	s.mu.Lock()
	if res.AccessToken != s.rejected {
		s.mu.Unlock()
		return res.AccessToken, nil
	}
	// MSAL v1.10.1 has no option that bypasses its cache on a plain
	// client-credentials call (WithClaims does, but sends a claims request
	// to Entra ID). A new client starts with an empty cache; callers that
	// raced here after another rebuilt it use the rebuilt one.
	if s.client == client {
		fresh, err := s.newClient()
		if err != nil {
			s.mu.Unlock()
			return "", fmt.Errorf("recreating token client for %s: %w", s.authority, err)
		}
		s.client = fresh
	}
	client = s.client
	s.mu.Unlock()

	res, err = client.AcquireTokenByCredential(ctx, s.scopes)
	if err != nil {
		return "", fmt.Errorf("acquiring token from %s: %w", s.authority, err)
	}
	return res.AccessToken, nil
}

// Invalidate makes the next Token fetch a new token if MSAL would otherwise
// return token again.
func (s *msalTokenSource) Invalidate(token string) {
	s.mu.Lock()
	s.rejected = token
	s.mu.Unlock()
}
