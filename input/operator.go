package input

import (
	"github.com/o365connect/o365connect/input/o365api"
)

// Settings is a validated office365_activity configuration, for operator
// commands (check, subscriptions) that talk to the API outside a pipeline.
// It is parsed by the input's own spec, so validation and defaults are the
// ones `o365connect run` applies.
type Settings struct {
	cfg   office365ActivityConfig
	cloud string
}

// ParseInputYAML parses the fields of an office365_activity input (the
// mapping under the `office365_activity:` key, environment variables already
// interpolated) into Settings.
func ParseInputYAML(fieldsYAML string) (Settings, error) {
	conf, err := office365ActivitySpec().ParseYAML(fieldsYAML, nil)
	if err != nil {
		return Settings{}, err
	}
	cfg, err := office365ActivityConfigFromParsed(conf)
	if err != nil {
		return Settings{}, err
	}
	cloud, err := conf.FieldString(oaFieldCloud)
	if err != nil {
		return Settings{}, err
	}
	return Settings{cfg: cfg, cloud: cloud}, nil
}

// TenantID is the tenant GUID, lower case.
func (s Settings) TenantID() string { return s.cfg.TenantID }

// ClientID is the app registration's client ID, lower case.
func (s Settings) ClientID() string { return s.cfg.ClientID }

// Cloud is the configured cloud preset, e.g. "commercial".
func (s Settings) Cloud() string { return s.cloud }

// UsesCertificate reports whether the app authenticates with a certificate
// rather than a client secret.
func (s Settings) UsesCertificate() bool { return len(s.cfg.CertificatePEM) > 0 }

// ContentTypes are the configured content types, in configuration order.
func (s Settings) ContentTypes() []string { return append([]string(nil), s.cfg.ContentTypes...) }

// StartSubscriptions reports whether the input starts missing subscriptions itself.
func (s Settings) StartSubscriptions() bool { return s.cfg.StartSubscriptions }

// Endpoints are the API and Entra ID hosts in use, overrides applied.
func (s Settings) Endpoints() o365api.Endpoints { return s.cfg.Endpoints }

// NewClient builds the API client and its token source exactly as the input
// does at Connect. observe may be nil.
func (s Settings) NewClient(observe func(o365api.RequestEvent)) (*o365api.Client, o365api.TokenSource, error) {
	return newAPIClientAndTokens(s.cfg, observe)
}
