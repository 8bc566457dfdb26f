package operator

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	_ "github.com/redpanda-data/benthos/v4/public/components/io"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/o365connect/o365connect/input"
	_ "github.com/o365connect/o365connect/output/kafka"
	_ "github.com/o365connect/o365connect/resources"
)

const testInputFields = `
tenant_id: 6d5a2c1e-3f4b-4a8e-9c71-0b2e8f4d6a13
client_id: 0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a
client_secret: ${SECRET}
content_types: [Audit.Exchange, DLP.All]
`

func testSettings(t *testing.T) input.Settings {
	t.Helper()
	s, err := input.ParseInputYAML(`
tenant_id: 6d5a2c1e-3f4b-4a8e-9c71-0b2e8f4d6a13
client_id: 0f8e7d6c-5b4a-4392-8170-6f5e4d3c2b1a
client_secret: x
content_types: [Audit.Exchange, DLP.All]
`)
	require.NoError(t, err)
	return s
}

func fakeJWT(t *testing.T, claims map[string]any) string {
	t.Helper()
	payload, err := json.Marshal(claims)
	require.NoError(t, err)
	return "eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString(payload) + ".sig"
}

func TestCheckPermissions(t *testing.T) {
	settings := testSettings(t)
	tests := []struct {
		name       string
		roles      []string
		aud        string
		wantStatus Status
		wantRead   bool
	}{
		{"both granted", []string{roleRead, roleReadDlp}, "https://manage.office.com", StatusOK, true},
		{"no Read", []string{roleReadDlp}, "https://manage.office.com", StatusFailed, false},
		{"no ReadDlp while DLP.All is collected", []string{roleRead}, "https://manage.office.com", StatusFailed, true},
		{"token for another cloud", []string{roleRead, roleReadDlp}, "https://manage.office365.us", StatusFailed, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res, canRead := CheckPermissions(fakeJWT(t, map[string]any{"roles": tc.roles, "aud": tc.aud}), settings)
			assert.Equal(t, tc.wantStatus, res.Status, res)
			assert.Equal(t, tc.wantRead, canRead)
			if tc.wantStatus == StatusFailed {
				assert.NotEmpty(t, res.Cause)
				assert.NotEmpty(t, res.Fix)
			}
		})
	}
	res, canRead := CheckPermissions("not-a-jwt", settings)
	assert.Equal(t, StatusFailed, res.Status)
	assert.False(t, canRead)
}

func TestExplainTokenError(t *testing.T) {
	settings := testSettings(t)
	tests := []struct{ body, wantCause string }{
		{`{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided."}`, "client secret is wrong"},
		{`AADSTS7000222: The provided client secret keys are expired.`, "has expired"},
		{`AADSTS700016: Application with identifier 'x' was not found`, "no app with client_id"},
		{`AADSTS90002: Tenant 'x' not found.`, "no tenant with this tenant_id"},
		{`AADSTS900382: Confidential Client is not supported in Cross Cloud request.`, "another cloud"},
		{`AADSTS700027: The certificate with identifier used to sign the client assertion is not registered on application.`, "certificate is not accepted"},
		{`AADSTS50000: something new`, "Entra ID refused the token request (AADSTS50000)"},
		{`dial tcp 127.0.0.1:1: connect: connection refused`, "could not be reached"},
	}
	for _, tc := range tests {
		cause, fix := explainTokenError(errors.New("acquiring token: "+tc.body), settings)
		assert.Contains(t, cause, tc.wantCause, tc.body)
		assert.NotEmpty(t, fix, tc.body)
	}
}

func TestParsePipelineFindsNestedComponentsAndInterpolates(t *testing.T) {
	env := map[string]string{"SECRET": "s3cret", "BROKERS": "127.0.0.1:9092"}
	lookup := func(k string) (string, bool) { v, ok := env[k]; return v, ok }
	p, err := ParsePipelineYAML([]byte(`
input:
  broker:
    inputs:
      - generate: {mapping: 'root = {}'}
      - office365_activity:`+indent(testInputFields, "          ")+`
output:
  switch:
    cases:
      - check: 'true'
        output:
          kafka_franz:
            seed_brokers: [${BROKERS}]
            topic: audit
cache_resources:
  - label: o365_checkpoints
    memory: {}
`), lookup)
	require.NoError(t, err)
	require.Len(t, p.Inputs, 1)
	assert.Equal(t, "input.broker.inputs.1", p.Inputs[0].Path)
	assert.Equal(t, []string{"Audit.Exchange", "DLP.All"}, p.Inputs[0].Settings.ContentTypes())
	require.Len(t, p.Kafka, 1)
	assert.Equal(t, "output.switch.cases.0.output", p.Kafka[0].Path)
	assert.Equal(t, []string{"127.0.0.1:9092"}, p.Kafka[0].Settings.SeedBrokers())

	delete(env, "SECRET")
	_, err = ParsePipelineYAML([]byte("input:\n  office365_activity:"+indent(testInputFields, "    ")+"output:\n  drop: {}\n"), lookup)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "SECRET", "a missing environment variable is named, as run names it")

	_, err = ParsePipelineYAML([]byte("input:\n  generate: {mapping: 'root = {}'}\noutput:\n  drop: {}\n"), lookup)
	assert.ErrorContains(t, err, "no office365_activity input")
}

func indent(s, prefix string) string {
	out := "\n"
	for _, line := range strings.Split(s, "\n") {
		if line != "" {
			out += prefix + line + "\n"
		}
	}
	return out
}

func TestPassed(t *testing.T) {
	assert.True(t, Passed([]StepResult{{Status: StatusOK}, {Status: StatusWarn}}))
	assert.False(t, Passed([]StepResult{{Status: StatusOK}, {Status: StatusSkipped}}))
	assert.False(t, Passed([]StepResult{{Status: StatusFailed}}))
	assert.False(t, Passed(nil))
}
