package main

import (
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/o365connect/o365connect/input/o365sim"
)

// tenantEndpoint is where a test points the pipeline: the simulator itself,
// or a server in front of it.
type tenantEndpoint struct {
	url, caFile string
}

func startSim(t *testing.T, cfg o365sim.Config) (*o365sim.Server, tenantEndpoint) {
	t.Helper()
	sim, err := o365sim.New(cfg)
	require.NoError(t, err)
	require.NoError(t, sim.Start("127.0.0.1:0"))
	t.Cleanup(func() { sim.Close() })
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, sim.CACertPEM(), 0o600))
	return sim, tenantEndpoint{url: sim.URL(), caFile: caFile}
}

// runOperatorCommand runs the binary with testdata/check.yaml pointed at ep.
func runOperatorCommand(t *testing.T, sim *o365sim.Server, ep tenantEndpoint, env []string, args ...string) (string, int) {
	t.Helper()
	cmd := exec.Command(binaryPath, args...)
	cmd.Env = append(os.Environ(),
		"O365_TENANT_ID="+sim.TenantID(),
		"O365_CLIENT_ID="+sim.ClientID(),
		"O365_CLIENT_SECRET="+sim.ClientSecret(),
		"O365_API_URL="+ep.url,
		"O365_LOGIN_URL="+ep.url,
		"O365_CA_FILE="+ep.caFile,
		"KAFKA_BROKERS=127.0.0.1:1",
	)
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return string(out), exitErr.ExitCode()
	}
	require.NoError(t, err, "output:\n%s", out)
	return string(out), 0
}

func newKafka(t *testing.T) string {
	t.Helper()
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1))
	require.NoError(t, err)
	t.Cleanup(cluster.Close)
	return strings.Join(cluster.ListenAddrs(), ",")
}

func TestCheckPassesAgainstAHealthyTenantAndKafka(t *testing.T) {
	sim, ep := startSim(t, o365sim.Config{Seed: 7, History: 3 * time.Hour, SubscribedAtStart: o365sim.ContentTypes})
	out, code := runOperatorCommand(t, sim, ep, []string{"KAFKA_BROKERS=" + newKafka(t)}, "check", "-c", "testdata/check.yaml")
	assert.Equal(t, 0, code, out)
	for _, step := range []string{"token", "permissions", "subscriptions", "unified audit log", "content Audit.Exchange", "content DLP.All", "kafka connection", "kafka topics"} {
		assert.Regexp(t, `(?m)^(OK|WARN) +`+step+` `, out)
	}
	assert.Contains(t, out, "fetched the newest")
	assert.NotContains(t, out, sim.ClientSecret(), "the secret never appears")
}

func TestCheckNamesEachFailureCause(t *testing.T) {
	tests := []struct {
		name      string
		cfg       o365sim.Config
		env       []string
		prepare   func(sim *o365sim.Server)
		wantStep  string
		wantCause string
	}{
		{name: "wrong secret", env: []string{"O365_CLIENT_SECRET=not-the-secret"},
			wantStep: "token", wantCause: "the client secret is wrong (AADSTS7000215)"},
		{name: "unknown tenant", env: []string{"O365_TENANT_ID=11111111-2222-4333-8444-555555555555"},
			wantStep: "token", wantCause: "knows no tenant with this tenant_id (AADSTS90002)"},
		{name: "app not in tenant", env: []string{"O365_CLIENT_ID=11111111-2222-4333-8444-555555555555"},
			wantStep: "token", wantCause: "no app with client_id exists in this tenant (AADSTS700016)"},
		{name: "missing ActivityFeed.Read", cfg: o365sim.Config{Roles: []string{o365sim.RoleReadDlp}},
			wantStep: "permissions", wantCause: "every Activity API call needs ActivityFeed.Read"},
		{name: "missing ActivityFeed.ReadDlp", cfg: o365sim.Config{Roles: []string{o365sim.RoleRead}},
			wantStep: "permissions", wantCause: "without ActivityFeed.ReadDlp its records lack the detected sensitive information"},
		{name: "subscription not enabled", cfg: o365sim.Config{SubscribedAtStart: []string{o365sim.ContentTypeExchange}},
			wantStep: "subscriptions", wantCause: "start_subscriptions is false"},
		{name: "subscription disabled (AF20023)",
			prepare: func(sim *o365sim.Server) {
				sim.Inject(o365sim.Fault{Kind: o365sim.FaultSubscriptionDisabled, Op: o365sim.OpListContent})
			},
			wantStep: "unified audit log", wantCause: "unified audit logging was turned off, which disables subscriptions"},
		{name: "kafka unreachable", wantStep: "kafka connection", wantCause: "connection refused"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.Seed, cfg.History = 8, 2*time.Hour
			if cfg.SubscribedAtStart == nil {
				cfg.SubscribedAtStart = o365sim.ContentTypes
			}
			sim, ep := startSim(t, cfg)
			if tc.prepare != nil {
				tc.prepare(sim)
			}
			out, code := runOperatorCommand(t, sim, ep, tc.env, "check", "-c", "testdata/check.yaml")
			assert.Equal(t, 1, code, out)
			assert.Regexp(t, `(?m)^FAILED +`+tc.wantStep+` `, out)
			assert.Contains(t, out, tc.wantCause)
			assert.Contains(t, out, "fix:")
		})
	}
}

// TestCheckRecognisesAuditLoggingOff puts a server in front of the simulator
// that answers listings as the service does while unified audit logging is
// off (management-api.md §2.1).
func TestCheckRecognisesAuditLoggingOff(t *testing.T) {
	sim, err := o365sim.New(o365sim.Config{Seed: 9, History: 2 * time.Hour, SubscribedAtStart: o365sim.ContentTypes})
	require.NoError(t, err)
	front := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasSuffix(r.URL.Path, "/subscriptions/content") {
			w.Header().Set("Content-Type", "application/json; charset=utf-8")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"error":{"code":"AF20055","message":"Microsoft.Office.Compliance.Audit.DataServiceException: Tenant %s does not exist."}}`, sim.TenantID())
			return
		}
		sim.Handler().ServeHTTP(w, r)
	}))
	defer front.Close()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: front.Certificate().Raw}), 0o600))

	out, code := runOperatorCommand(t, sim, tenantEndpoint{url: front.URL, caFile: caFile}, nil, "check", "-c", "testdata/check.yaml")
	assert.Equal(t, 1, code, out)
	assert.Regexp(t, `(?m)^FAILED +unified audit log +off`, out)
	assert.Contains(t, out, "Set-AdminAuditLogConfig -UnifiedAuditLogIngestionEnabled $true")
}

func TestCheckReportsAConfigThatCannotLoad(t *testing.T) {
	cmd := exec.Command(binaryPath, "check", "-c", "testdata/check.yaml")
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")} // no O365_* variables
	out, err := cmd.CombinedOutput()
	var exitErr *exec.ExitError
	require.ErrorAs(t, err, &exitErr)
	assert.Equal(t, 1, exitErr.ExitCode())
	assert.Regexp(t, `(?m)^FAILED +config `, string(out))
	assert.Contains(t, string(out), "O365_TENANT_ID")
}

func TestSubscriptionsStartListStop(t *testing.T) {
	sim, ep := startSim(t, o365sim.Config{Seed: 10, History: time.Hour, SubscribedAtStart: []string{o365sim.ContentTypeExchange}})

	out, code := runOperatorCommand(t, sim, ep, nil, "subscriptions", "start", "-c", "testdata/check.yaml")
	require.Equal(t, 0, code, out)
	assert.Regexp(t, `Audit.Exchange +enabled +already enabled`, out)
	assert.Regexp(t, `DLP.All +enabled +started`, out)

	out, code = runOperatorCommand(t, sim, ep, nil, "subscriptions", "stop", "-c", "testdata/check.yaml", "--content-type", "DLP.All", "--json")
	require.Equal(t, 0, code, out)
	var rows []map[string]string
	require.NoError(t, json.Unmarshal([]byte(out), &rows), out)
	require.Len(t, rows, 1)
	assert.Equal(t, "disabled", rows[0]["status"])

	out, code = runOperatorCommand(t, sim, ep, nil, "subscriptions", "list", "-c", "testdata/check.yaml", "--json")
	require.Equal(t, 0, code, out)
	require.NoError(t, json.Unmarshal([]byte(out), &rows), out)
	require.Len(t, rows, 2)
	assert.Equal(t, map[string]string{"Audit.Exchange": "enabled", "DLP.All": "disabled"},
		map[string]string{rows[0]["content_type"]: rows[0]["status"], rows[1]["content_type"]: rows[1]["status"]})

	out, code = runOperatorCommand(t, sim, ep, []string{"O365_CLIENT_SECRET=wrong"}, "subscriptions", "list", "-c", "testdata/check.yaml")
	assert.Equal(t, 1, code, out)
	assert.Contains(t, out, "AADSTS7000215")
	assert.NotContains(t, out, sim.ClientSecret())
}

func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

func httpStatus(url string) int {
	resp, err := http.Get(url)
	if err != nil {
		return 0
	}
	resp.Body.Close()
	return resp.StatusCode
}

// TestBinaryReadyAndMetrics runs the pipeline with Benthos' HTTP server and
// the prometheus exporter: /ready passes only once the input is connected,
// and /metrics serves the input's series.
func TestBinaryReadyAndMetrics(t *testing.T) {
	sim, _ := startSim(t, o365sim.Config{Seed: 11, History: 2 * time.Hour})
	addr := freePort(t)
	outDir := t.TempDir()
	runPipeline(t, sim, outDir, t.TempDir(), "O365_CLIENT_SECRET="+sim.ClientSecret(), "O365_HTTP_ENABLED=true",
		"O365_HTTP_ADDRESS="+addr, "O365_METRICS=prometheus")
	waitForLines(t, outDir, len(sim.ExpectedRecords()), 90*time.Second)
	require.Eventually(t, func() bool { return httpStatus("http://"+addr+"/ready") == http.StatusOK }, 20*time.Second, 200*time.Millisecond)

	resp, err := http.Get("http://" + addr + "/metrics")
	require.NoError(t, err)
	body := new(strings.Builder)
	_, _ = io.Copy(body, resp.Body)
	resp.Body.Close()
	for _, name := range []string{"o365_records_total", "o365_blobs_total", "o365_last_successful_poll_timestamp_seconds", "o365_lag_seconds", "o365_checkpoint_writes_total"} {
		assert.Contains(t, body.String(), name)
	}

	wrong, _ := startSim(t, o365sim.Config{Seed: 12, History: time.Hour})
	badAddr := freePort(t)
	runPipeline(t, wrong, t.TempDir(), t.TempDir(), "O365_CLIENT_SECRET=wrong", "O365_HTTP_ENABLED=true",
		"O365_HTTP_ADDRESS="+badAddr, "O365_METRICS=prometheus")
	require.Eventually(t, func() bool { return httpStatus("http://"+badAddr+"/ready") != 0 }, 20*time.Second, 200*time.Millisecond)
	time.Sleep(time.Second)
	assert.Equal(t, http.StatusServiceUnavailable, httpStatus("http://"+badAddr+"/ready"), "a rejected secret keeps the input unconnected")
}
