package main

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/o365connect/o365connect/input/o365api"
	"github.com/o365connect/o365connect/input/o365sim"
)

// binaryPath is the o365connect binary built once for the tests in this file.
var binaryPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "o365connect-e2e")
	if err != nil {
		panic(err)
	}
	binaryPath = filepath.Join(dir, "o365connect")
	build := exec.Command("go", "build", "-o", binaryPath, ".")
	build.Stdout, build.Stderr = os.Stdout, os.Stderr
	if err := build.Run(); err != nil {
		panic("building o365connect: " + err.Error())
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type deliveredLine struct {
	Metadata map[string]any `json:"metadata"`
	Record   map[string]any `json:"record"`
}

// readTopics reads every JSON line the pipeline wrote, by topic file.
func readTopics(t *testing.T, dir string) map[string][]deliveredLine {
	t.Helper()
	out := map[string][]deliveredLine{}
	entries, err := os.ReadDir(dir)
	if os.IsNotExist(err) {
		return out
	}
	require.NoError(t, err)
	for _, e := range entries {
		f, err := os.Open(filepath.Join(dir, e.Name()))
		require.NoError(t, err)
		scanner := bufio.NewScanner(f)
		scanner.Buffer(make([]byte, 1<<20), 16<<20)
		for scanner.Scan() {
			var l deliveredLine
			if json.Unmarshal(scanner.Bytes(), &l) != nil {
				continue // a line still being written
			}
			topic := strings.TrimSuffix(e.Name(), ".jsonl")
			out[topic] = append(out[topic], l)
		}
		f.Close()
	}
	return out
}

func countDelivered(topics map[string][]deliveredLine) int {
	n := 0
	for _, ls := range topics {
		n += len(ls)
	}
	return n
}

// runPipeline starts `o365connect run` on the e2e pipeline against sim.
func runPipeline(t *testing.T, sim *o365sim.Server, outDir, stateDir string, extraEnv ...string) *exec.Cmd {
	t.Helper()
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	require.NoError(t, os.WriteFile(caFile, sim.CACertPEM(), 0o600))
	cmd := exec.Command(binaryPath, "run", "testdata/e2e.yaml")
	cmd.Env = append(os.Environ(),
		"O365_TENANT_ID="+sim.TenantID(),
		"O365_CLIENT_ID="+sim.ClientID(),
		"O365_API_URL="+sim.URL(),
		"O365_LOGIN_URL="+sim.URL(),
		"O365_CA_FILE="+caFile,
		"O365_OUT_DIR="+outDir,
		"O365_STATE_DIR="+stateDir,
	)
	cmd.Env = append(cmd.Env, extraEnv...)
	logFile, err := os.Create(filepath.Join(t.TempDir(), "pipeline.log"))
	require.NoError(t, err)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	require.NoError(t, cmd.Start())
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_, _ = cmd.Process.Wait()
		if t.Failed() {
			logs, _ := os.ReadFile(logFile.Name())
			t.Logf("pipeline log:\n%s", logs)
		}
	})
	return cmd
}

func waitForLines(t *testing.T, dir string, want int, timeout time.Duration) map[string][]deliveredLine {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		topics := readTopics(t, dir)
		if countDelivered(topics) >= want {
			return topics
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d of %d records landed within %v", countDelivered(topics), want, timeout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestBinaryDeliversEveryRecordOnceIncludingLateContent(t *testing.T) {
	sim, err := o365sim.New(o365sim.Config{Seed: 42, History: 12 * time.Hour, BlobInterval: 30 * time.Minute})
	require.NoError(t, err)
	require.NoError(t, sim.Start("127.0.0.1:0"))
	defer sim.Close()

	outDir := t.TempDir()
	cmd := runPipeline(t, sim, outDir, t.TempDir(), "O365_CLIENT_SECRET="+sim.ClientSecret())

	want := sim.ExpectedRecords()
	waitForLines(t, outDir, len(want), 90*time.Second)

	late := sim.AddBlob(o365api.ContentTypeExchange, time.Now().Add(-15*time.Minute), 4)
	want = sim.ExpectedRecords()
	waitForLines(t, outDir, len(want), 30*time.Second)
	time.Sleep(2 * time.Second) // more polls: re-listing the look-back must not re-emit

	require.NoError(t, cmd.Process.Signal(syscall.SIGTERM))
	_, _ = cmd.Process.Wait()

	topics := readTopics(t, outDir)
	byID := map[string]deliveredLine{}
	byIDTopic := map[string]string{}
	for topic, lines := range topics {
		for _, l := range lines {
			id, _ := l.Metadata["o365_record_id"].(string)
			_, dup := byID[id]
			assert.False(t, dup, "record %s delivered twice", id)
			byID[id] = l
			byIDTopic[id] = topic
		}
	}
	assert.Len(t, byID, len(want))

	lateSeen, contentTypes := 0, map[string]bool{}
	for _, exp := range want {
		l, ok := byID[exp.ID]
		if !assert.True(t, ok, "record %s (%s) missing", exp.ID, exp.ContentType) {
			continue
		}
		assert.Equal(t, exp.ContentType, l.Metadata["o365_content_type"])
		assert.Equal(t, exp.ContentID, l.Metadata["o365_content_id"])
		assert.Equal(t, exp.Workload, l.Metadata["o365_workload"])
		assert.Equal(t, exp.Operation, l.Metadata["o365_operation"])
		assert.Equal(t, sim.TenantID(), l.Metadata["o365_tenant_id"])
		assert.Equal(t, exp.ID, l.Record["Id"], "content is the record itself")
		wantTopic := "o365." + strings.ReplaceAll(strings.ToLower(exp.Workload), " ", "_")
		assert.Equal(t, wantTopic, byIDTopic[exp.ID])
		contentTypes[exp.ContentType] = true
		if exp.ContentID == late.ContentID {
			lateSeen++
		}
	}
	assert.Equal(t, 4, lateSeen, "the late-listed blob was delivered")
	assert.Len(t, contentTypes, 5, "every content type flowed")
}

func TestBinaryAuthenticatesWithCertificate(t *testing.T) {
	pemBytes, cert, err := o365sim.GenerateClientCertificate()
	require.NoError(t, err)
	sim, err := o365sim.New(o365sim.Config{Seed: 43, History: 2 * time.Hour, ClientCertificate: cert,
		ClientSecret: "the-secret-is-not-used-here"})
	require.NoError(t, err)
	require.NoError(t, sim.Start("127.0.0.1:0"))
	defer sim.Close()
	certFile := filepath.Join(t.TempDir(), "app.pem")
	require.NoError(t, os.WriteFile(certFile, pemBytes, 0o600))

	outDir := t.TempDir()
	runPipeline(t, sim, outDir, t.TempDir(), "O365_CERTIFICATE_FILE="+certFile)
	waitForLines(t, outDir, len(sim.ExpectedRecords()), 60*time.Second)
}

func TestSimulateCommandServesTheAPI(t *testing.T) {
	caFile := filepath.Join(t.TempDir(), "ca.pem")
	cmd := exec.Command(binaryPath, "simulate", "--addr", "127.0.0.1:0", "--ca-file", caFile, "--subscribed")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	defer func() { _ = cmd.Process.Kill(); _, _ = cmd.Process.Wait() }()

	exports := map[string]string{}
	scanner := bufio.NewScanner(stdout)
	for len(exports) < 6 && scanner.Scan() {
		line := strings.TrimSpace(scanner.Text())
		if k, v, ok := strings.Cut(strings.TrimPrefix(line, "export "), "="); ok && strings.HasPrefix(line, "export ") {
			exports[k] = v
		}
	}
	go func() { _, _ = io.Copy(io.Discard, stdout) }()
	require.Len(t, exports, 6, "simulate prints the O365_* exports")

	caPEM, err := os.ReadFile(caFile)
	require.NoError(t, err)
	tokens, err := o365api.NewMSALTokenSource(o365api.MSALConfig{
		TenantID: exports["O365_TENANT_ID"], ClientID: exports["O365_CLIENT_ID"], ClientSecret: exports["O365_CLIENT_SECRET"],
		LoginURL: exports["O365_LOGIN_URL"], Scope: "https://manage.office.com/.default",
		HTTPClient: trustingClient(t, caPEM), DisableInstanceDiscovery: true,
	})
	require.NoError(t, err)
	client, err := o365api.New(o365api.Config{TenantID: exports["O365_TENANT_ID"], APIURL: exports["O365_API_URL"],
		HTTPClient: trustingClient(t, caPEM), Tokens: tokens})
	require.NoError(t, err)

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	subs, err := client.ListSubscriptions(ctx)
	require.NoError(t, err)
	assert.Len(t, subs, 5, "--subscribed enables every content type")
	var items int
	now := time.Now()
	require.NoError(t, client.ListContent(ctx, o365api.ContentTypeExchange, now.Add(-23*time.Hour), now, func(page []o365api.ContentItem) error {
		items += len(page)
		return nil
	}))
	assert.Positive(t, items)
}

func trustingClient(t *testing.T, caPEM []byte) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	require.True(t, pool.AppendCertsFromPEM(caPEM))
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}
	return &http.Client{Transport: transport, Timeout: 10 * time.Second}
}
