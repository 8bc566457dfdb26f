package input

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/redpanda-data/benthos/v4/public/service"

	"github.com/o365connect/o365connect/input/o365api"
)

const (
	testTenant = "11111111-2222-3333-4444-555555555555"
	testClient = "66666666-7777-8888-9999-000000000000"
)

func TestConfigValidation(t *testing.T) {
	certFile := filepath.Join(t.TempDir(), "app.pem")
	require.NoError(t, os.WriteFile(certFile, []byte("not checked until connect"), 0o600))

	base := "tenant_id: " + testTenant + "\nclient_id: " + testClient + "\n"
	tests := []struct {
		name        string
		yaml        string
		errContains string
	}{
		{name: "minimal with secret", yaml: base + "client_secret: s3cret\n"},
		{name: "with certificate", yaml: base + "certificate_file: " + certFile + "\n"},
		{name: "no credential", yaml: base, errContains: "client_secret or certificate_file: one of them must be set"},
		{name: "two credentials", yaml: base + "client_secret: x\ncertificate_file: " + certFile + "\n", errContains: "set only one of them"},
		{name: "missing certificate file", yaml: base + "certificate_file: /nonexistent/app.pem\n", errContains: "certificate_file: reading \"/nonexistent/app.pem\""},
		{name: "bad tenant", yaml: "tenant_id: contoso\nclient_id: " + testClient + "\nclient_secret: x\n", errContains: `tenant_id: "contoso" is not a GUID`},
		{name: "bad client", yaml: "tenant_id: " + testTenant + "\nclient_id: 123\nclient_secret: x\n", errContains: `client_id: "123" is not a GUID`},
		{name: "unknown content type", yaml: base + "client_secret: x\ncontent_types: [Audit.Exchange, Audit.Foo]\n", errContains: `content_types[1]: "Audit.Foo" is not one of Audit.AzureActiveDirectory`},
		{name: "duplicate content type", yaml: base + "client_secret: x\ncontent_types: [Audit.Exchange, Audit.Exchange]\n", errContains: `content_types[1]: "Audit.Exchange" is listed twice`},
		{name: "empty content types", yaml: base + "client_secret: x\ncontent_types: []\n", errContains: "content_types: at least one"},
		{name: "backfill too long", yaml: base + "client_secret: x\nbackfill: 200h\n", errContains: "backfill: 200h0m0s is out of range"},
		{name: "poll too fast", yaml: base + "client_secret: x\npoll_interval: 10ms\n", errContains: "poll_interval: 10ms is out of range"},
		{name: "too many fetches", yaml: base + "client_secret: x\nmax_concurrent_fetches: 500\n", errContains: "max_concurrent_fetches: 500 is out of range"},
		{name: "zero budget", yaml: base + "client_secret: x\nmax_requests_per_minute: 0\n", errContains: "max_requests_per_minute: 0 is out of range"},
		{name: "bad publisher", yaml: base + "client_secret: x\npublisher_id: me\n", errContains: `publisher_id: "me" is not a GUID`},
		{name: "api_url with path", yaml: base + "client_secret: x\napi_url: https://127.0.0.1:8443/api/v1.0\n", errContains: "api_url: \"https://127.0.0.1:8443/api/v1.0\" must be https:// and a host only"},
		{name: "plain http login_url", yaml: base + "client_secret: x\nlogin_url: http://127.0.0.1:8443\n", errContains: "login_url: \"http://127.0.0.1:8443\" must be https://"},
		{name: "unknown cloud", yaml: base + "client_secret: x\ncloud: mars\n", errContains: "mars"},
		{name: "empty checkpoint cache", yaml: base + "client_secret: x\ncheckpoint_cache: \"\"\n", errContains: "checkpoint_cache: must name a cache resource"},
	}
	spec := office365ActivitySpec()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parsed, err := spec.ParseYAML(tt.yaml, nil)
			if err == nil {
				_, err = office365ActivityConfigFromParsed(parsed)
			}
			if tt.errContains == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.errContains)
			assert.NotContains(t, err.Error(), "s3cret")
		})
	}
}

func TestConfigDefaultsAndCloud(t *testing.T) {
	parsed, err := office365ActivitySpec().ParseYAML(`
tenant_id: `+testTenant+`
client_id: `+testClient+`
client_secret: x
cloud: gcc_high
api_url: https://127.0.0.1:8443/
`, nil)
	require.NoError(t, err)
	cfg, err := office365ActivityConfigFromParsed(parsed)
	require.NoError(t, err)

	assert.Equal(t, o365api.AllContentTypes, cfg.ContentTypes)
	assert.Equal(t, testTenant, cfg.PublisherID, "publisher_id defaults to tenant_id")
	assert.Equal(t, 24*time.Hour, cfg.Backfill)
	assert.Equal(t, time.Minute, cfg.PollInterval)
	assert.Equal(t, 8, cfg.MaxConcurrentFetches)
	assert.Equal(t, 1800, cfg.MaxRequestsPerMinute)
	assert.Equal(t, "o365_checkpoints", cfg.CheckpointCache)
	assert.True(t, cfg.StartSubscriptions)
	assert.Equal(t, "https://127.0.0.1:8443", cfg.Endpoints.APIURL, "api_url replaces the cloud's API host")
	assert.Equal(t, "https://login.microsoftonline.us", cfg.Endpoints.LoginURL, "gcc_high logs in at the .us host")
	assert.Equal(t, "https://manage.office365.us/.default", cfg.Endpoints.Scope())
	assert.False(t, cfg.CustomLoginURL)
}

func TestConfigLintRejectsMissingCredential(t *testing.T) {
	err := service.NewStreamBuilder().AddInputYAML(`
office365_activity:
  tenant_id: ` + testTenant + `
  client_id: ` + testClient + `
`)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "one of client_secret or certificate_file must be set")
}
