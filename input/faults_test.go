package input

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/o365connect/o365connect/input/o365api"
	"github.com/o365connect/o365connect/input/o365sim"
	"github.com/o365connect/o365connect/resources"
)

// The fault suite: each test breaks one thing the way the real API (or the
// local machine) does and asserts that every record of the simulated tenant
// still arrives, counting any duplicate it allows.

// logBuffer collects the input's log lines for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// faultRun is a pipeline of the input against sim whose deliveries (and
// dead letters) are recorded and whose logs are kept.
type faultRun struct {
	got         *received
	logs        *logBuffer
	stateDir    string
	mu          sync.Mutex
	deadLetters []map[string]string
	firstAt     time.Time
	pipe        *pipeline
}

func (r *faultRun) deadLetterCount() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.deadLetters)
}

type faultOpts struct {
	extraYAML string
	stateDir  string
	level     slog.Level
	// tls replaces the TLS settings (which trust the sim's CA).
	tls string
}

func startFaultRun(t *testing.T, sim *o365sim.Server, o faultOpts) *faultRun {
	t.Helper()
	if o.stateDir == "" {
		o.stateDir = t.TempDir()
	}
	run := &faultRun{got: newReceived(), logs: &logBuffer{}, stateDir: o.stateDir}
	tlsYAML := o.tls
	if tlsYAML == "" {
		caFile := filepath.Join(t.TempDir(), "ca.pem")
		require.NoError(t, os.WriteFile(caFile, sim.CACertPEM(), 0o600))
		tlsYAML = "tls:\n  enabled: true\n  root_cas_file: " + caFile + "\n"
	}
	builder := service.NewStreamBuilder()
	builder.SetLogger(slog.New(slog.NewTextHandler(run.logs, &slog.HandlerOptions{Level: o.level})))
	require.NoError(t, builder.AddCacheYAML("label: o365_checkpoints\ncheckpoint_file:\n  directory: "+o.stateDir))
	require.NoError(t, builder.AddInputYAML(`
office365_activity:
  tenant_id: `+sim.TenantID()+`
  client_id: `+sim.ClientID()+`
  client_secret: `+sim.ClientSecret()+`
  api_url: `+sim.URL()+`
  login_url: `+sim.URL()+`
  poll_interval: 1s
  lookback: 1h
  max_requests_per_minute: 60000
`+indent(tlsYAML)+indent(o.extraYAML)))
	require.NoError(t, builder.AddBatchConsumerFunc(func(_ context.Context, b service.MessageBatch) error {
		run.mu.Lock()
		if run.firstAt.IsZero() {
			run.firstAt = time.Now()
		}
		var records service.MessageBatch
		for _, m := range b {
			if dl, _ := m.MetaGet(MetaDeadLetter); dl == "true" {
				meta := map[string]string{}
				_ = m.MetaWalk(func(k, v string) error { meta[k] = v; return nil })
				raw, _ := m.AsBytes()
				meta["raw"] = string(raw)
				run.deadLetters = append(run.deadLetters, meta)
				continue
			}
			records = append(records, m)
		}
		run.mu.Unlock()
		run.got.add(records)
		return nil
	}))
	stream, err := builder.Build()
	require.NoError(t, err)
	run.pipe = &pipeline{stream: stream, done: make(chan error, 1)}
	go func() { run.pipe.done <- stream.Run(context.Background()) }()
	t.Cleanup(func() {
		run.pipe.stop(t)
		if t.Failed() {
			t.Logf("input log:\n%s", tail(run.logs.String(), 40))
		}
	})
	return run
}

func tail(s string, n int) string {
	lines := strings.Split(s, "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// faultSim is a small tenant (about 600 records) with unlimited budget.
func faultSim(t *testing.T, cfg o365sim.Config) *o365sim.Server {
	t.Helper()
	if cfg.History == 0 {
		cfg.History = 3 * time.Hour
	}
	if cfg.RequestsPerMinute == 0 {
		cfg.RequestsPerMinute = -1
	}
	return simTenant(t, cfg)
}

// assertEveryRecordOnce checks that every record of want arrived exactly
// once, except those of skipped blobs, which must not arrive at all.
func assertEveryRecordOnce(t *testing.T, got *received, want []o365sim.ExpectedRecord, skipped ...string) {
	t.Helper()
	skip := map[string]bool{}
	for _, id := range skipped {
		skip[id] = true
	}
	got.mu.Lock()
	defer got.mu.Unlock()
	n := 0
	for _, exp := range want {
		if skip[exp.ContentID] {
			assert.Empty(t, got.records[exp.ID], "record %s of skipped blob %s", exp.ID, exp.ContentID)
			continue
		}
		n++
		assert.Len(t, got.records[exp.ID], 1, "record %s of %s", exp.ID, exp.ContentID)
	}
	assert.Equal(t, n, got.total, "deliveries")
}

func waitUnique(t *testing.T, got *received, n int, timeout time.Duration) {
	t.Helper()
	waitFor(t, "records to arrive", timeout, func() bool { u, _ := got.counts(); return u >= n })
}

func blobCount(sim *o365sim.Server) int {
	n := 0
	for _, ct := range o365sim.ContentTypes {
		n += len(sim.Blobs(ct))
	}
	return n
}

func TestFaultThrottleBurstsAreWaitedOutWithoutAStorm(t *testing.T) {
	for _, tc := range []struct {
		name       string
		status     int
		retryAfter time.Duration
	}{
		{"AF429 as HTTP 403", http.StatusForbidden, 0},
		{"AF429 as HTTP 429 with Retry-After", http.StatusTooManyRequests, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := faultSim(t, o365sim.Config{Seed: 21})
			want := sim.ExpectedRecords()
			// The very first request is throttled: Connect cannot go on
			// before the wait, which makes the wait measurable.
			sim.Inject(o365sim.Fault{Kind: o365sim.FaultThrottle, Op: o365sim.OpListSubscriptions, Status: tc.status, RetryAfter: tc.retryAfter})
			sim.Inject(o365sim.Fault{Kind: o365sim.FaultThrottle, Op: o365sim.OpListContent, Status: tc.status, RetryAfter: tc.retryAfter, Times: 2})
			sim.Inject(o365sim.Fault{Kind: o365sim.FaultThrottle, Op: o365sim.OpGetBlob, Status: tc.status, RetryAfter: tc.retryAfter, Times: 4})
			started := time.Now()
			run := startFaultRun(t, sim, faultOpts{})
			waitUnique(t, run.got, len(want), time.Minute)
			assertEveryRecordOnce(t, run.got, want)

			st := sim.Stats()
			assert.Equal(t, 7, st.Throttled, "every injected throttle fired, and the input caused no others")
			assert.Equal(t, 4, st.Count(o365sim.OpGetBlob, tc.status))
			// No storm: each throttled request was repeated once, after the
			// wait; every blob was fetched exactly once successfully.
			assert.Equal(t, blobCount(sim), st.Count(o365sim.OpGetBlob, http.StatusOK))
			assert.Equal(t, blobCount(sim)+4, st.Count(o365sim.OpGetBlob))
			run.mu.Lock()
			waited := run.firstAt.Sub(started)
			run.mu.Unlock()
			if tc.retryAfter > 0 {
				assert.GreaterOrEqual(t, waited, tc.retryAfter, "Retry-After was honoured")
			} else {
				assert.GreaterOrEqual(t, waited, 500*time.Millisecond, "a throttle without Retry-After backs off")
			}
			assert.Contains(t, run.logs.String(), "Throttled by the Activity API")
		})
	}
}

func TestFaultServerErrorsTimeoutsAndExpiringTokens(t *testing.T) {
	// A 2 s token lifetime makes MSAL fetch a token for every call
	// (below 5 minutes it refetches), so tokens expire all through the run.
	sim := faultSim(t, o365sim.Config{Seed: 22, TokenLifetime: 2 * time.Second})
	want := sim.ExpectedRecords()
	for _, f := range []o365sim.Fault{
		{Kind: o365sim.FaultInternalError, Op: o365sim.OpListContent, Times: 2},
		{Kind: o365sim.FaultStatus, Op: o365sim.OpListContent, Status: http.StatusRequestTimeout},
		{Kind: o365sim.FaultUnavailable, Op: o365sim.OpGetBlob, Times: 3},
		{Kind: o365sim.FaultStatus, Op: o365sim.OpGetBlob, Status: http.StatusGatewayTimeout, Times: 2},
		{Kind: o365sim.FaultStatus, Op: o365sim.OpGetBlob, Code: "AF50005"},
		{Kind: o365sim.FaultUnauthorized, Op: o365sim.OpGetBlob, Times: 2},
		{Kind: o365sim.FaultInternalError, Op: o365sim.OpToken, Times: 2},
		{Kind: o365sim.FaultUnavailable, Op: o365sim.OpToken},
	} {
		sim.Inject(f)
	}
	run := startFaultRun(t, sim, faultOpts{})
	waitUnique(t, run.got, len(want), time.Minute)
	assertEveryRecordOnce(t, run.got, want)
	assert.Zero(t, sim.PendingFaults(), "every fault fired")
	assert.Greater(t, sim.Stats().TokensIssued, 10, "tokens expired and were fetched again mid-run")
}

func TestFaultInvalidClientIsAClearErrorAndAcknowledgesNothing(t *testing.T) {
	sim := faultSim(t, o365sim.Config{Seed: 23})
	want := sim.ExpectedRecords()
	sim.Inject(o365sim.Fault{Kind: o365sim.FaultInvalidClient, Times: 2})
	run := startFaultRun(t, sim, faultOpts{level: slog.LevelDebug})

	waitFor(t, "the token error in the log", 20*time.Second, func() bool { return strings.Contains(run.logs.String(), "invalid_client") })
	u, _ := run.got.counts()
	assert.Zero(t, u, "nothing is collected with rejected credentials")
	entries, _ := os.ReadDir(run.stateDir)
	assert.Empty(t, entries, "no checkpoint written while the credentials are rejected")
	logs := run.logs.String()
	assert.Contains(t, logs, "AADSTS7000215", "the error names Entra's reason")
	assert.NotContains(t, logs, sim.ClientSecret(), "the secret never reaches a log")

	// The credentials work again (the fault is spent): collection starts.
	waitUnique(t, run.got, len(want), time.Minute)
	assertEveryRecordOnce(t, run.got, want)
}

func TestFaultPoisonBlobsGoToTheDeadLetterPathAndNothingStalls(t *testing.T) {
	sim := faultSim(t, o365sim.Config{Seed: 24, RecordsPerBlob: 8})
	want := sim.ExpectedRecords()
	exchange := sim.Blobs(o365sim.ContentTypeExchange)
	sharePoint := sim.Blobs(o365sim.ContentTypeSharePoint)
	malformed, truncated, flaky := exchange[0], sharePoint[0], exchange[1]
	require.Greater(t, truncated.Records, 4)
	sim.Inject(o365sim.Fault{Kind: o365sim.FaultMalformedJSON, ContentID: malformed.ContentID, Times: 1000})
	sim.Inject(o365sim.Fault{Kind: o365sim.FaultTruncatedBody, ContentID: truncated.ContentID, After: 3, Times: 1000})
	// Fails once, then succeeds: retried, not dead-lettered.
	sim.Inject(o365sim.Fault{Kind: o365sim.FaultTruncatedBody, ContentID: flaky.ContentID, After: 2})

	stateDir := t.TempDir()
	// One fetcher: a poison blob must not hold up the rest of the queue.
	run := startFaultRun(t, sim, faultOpts{stateDir: stateDir, extraYAML: "blob_attempts: 2\nmax_concurrent_fetches: 1\nmax_batch_records: 2\n"})
	waitFor(t, "two dead letters", time.Minute, func() bool { return run.deadLetterCount() >= 2 })
	// Records 0 and 1 of the truncated blob went out as a normal batch before
	// the cut; the dead letter stands for the rest.
	waitUnique(t, run.got, len(want)-malformed.Records-(truncated.Records-2), time.Minute)
	time.Sleep(1500 * time.Millisecond) // further polls must not send them again
	run.pipe.stop(t)

	run.mu.Lock()
	dls := append([]map[string]string(nil), run.deadLetters...)
	run.mu.Unlock()
	require.Len(t, dls, 2, "one dead letter per poison blob, once")
	byID := map[string]map[string]string{}
	for _, dl := range dls {
		byID[dl[MetaContentID]] = dl
		assert.Equal(t, sim.TenantID(), dl[MetaTenantID])
		assert.NotEmpty(t, dl[MetaDeadLetterError])
		assert.True(t, strings.HasPrefix(dl["raw"], "["), "the dead letter carries the raw body")
	}
	require.Contains(t, byID, malformed.ContentID)
	require.Contains(t, byID, truncated.ContentID)
	assert.Equal(t, o365sim.ContentTypeExchange, byID[malformed.ContentID][MetaContentType])
	assert.Equal(t, "0", byID[malformed.ContentID][MetaDeadLetterFromRecord])
	assert.Contains(t, byID[malformed.ContentID][MetaDeadLetterError], "decoding")
	assert.Equal(t, "2", byID[truncated.ContentID][MetaDeadLetterFromRecord])
	assert.Equal(t, truncated.ContentURI, byID[truncated.ContentID][MetaDeadLetterContentURI])

	got := run.got
	got.mu.Lock()
	for _, r := range want {
		n := len(got.records[r.ID])
		switch {
		case r.ContentID == malformed.ContentID:
			assert.Zero(t, n, "record %s is in the dead letter", r.ID)
		case r.ContentID == truncated.ContentID:
			// Checked below by index.
		default:
			assert.Equal(t, 1, n, "record %s of %s", r.ID, r.ContentID)
		}
	}
	truncatedDelivered := 0
	for _, deliveries := range got.records {
		if deliveries[0][MetaContentID] == truncated.ContentID {
			truncatedDelivered++
		}
	}
	got.mu.Unlock()
	assert.Equal(t, 2, truncatedDelivered, "the records before the cut were delivered normally")

	// The checkpoint moved past both: they were delivered, to the
	// dead-letter path.
	assertCheckpointPast(t, stateDir, sim.TenantID(), malformed)
	assertCheckpointPast(t, stateDir, sim.TenantID(), truncated)
}

// assertCheckpointPast checks that the stored checkpoint no longer holds
// blob as pending and was listed past it: a restart will not fetch it again.
func assertCheckpointPast(t *testing.T, stateDir, tenantID string, blob o365sim.ContentInfo) {
	t.Helper()
	cp := readCheckpoint(t, stateDir, tenantID, blob.ContentType)
	for _, p := range cp.Pending {
		assert.NotEqual(t, blob.ContentID, p.ContentID, "blob %s is still pending in the checkpoint", blob.ContentID)
	}
	assert.True(t, cp.ListedThrough.After(blob.ContentCreated), "the checkpoint is listed past blob %s", blob.ContentID)
}

func readCheckpoint(t *testing.T, dir, tenantID, contentType string) contentCheckpoint {
	t.Helper()
	cache, err := resources.NewCheckpointFileCache(dir)
	require.NoError(t, err)
	raw, err := cache.Get(t.Context(), checkpointKey(tenantID, contentType))
	require.NoError(t, err)
	var cp contentCheckpoint
	require.NoError(t, json.Unmarshal(raw, &cp))
	return cp
}

func writeCheckpoint(t *testing.T, dir, tenantID, contentType string, cp contentCheckpoint) {
	t.Helper()
	cache, err := resources.NewCheckpointFileCache(dir)
	require.NoError(t, err)
	raw, err := json.Marshal(cp)
	require.NoError(t, err)
	require.NoError(t, cache.Set(t.Context(), checkpointKey(tenantID, contentType), raw, nil))
}

func TestFaultGoneOrExpiredBlobsAtTheHeadAreSkippedAndCounted(t *testing.T) {
	sim := faultSim(t, o365sim.Config{Seed: 25})
	want := sim.ExpectedRecords()
	gone := sim.Blobs(o365sim.ContentTypeGeneral)[0]
	expired := sim.Blobs(o365sim.ContentTypeAzureActiveDirectory)[0]
	sim.Inject(o365sim.Fault{Kind: o365sim.FaultBlobGone, ContentID: gone.ContentID, Times: 1000})
	sim.Inject(o365sim.Fault{Kind: o365sim.FaultBlobExpired, ContentID: expired.ContentID, Times: 1000})

	stateDir := t.TempDir()
	run := startFaultRun(t, sim, faultOpts{stateDir: stateDir, extraYAML: "max_concurrent_fetches: 1\n"})
	waitUnique(t, run.got, len(want)-gone.Records-expired.Records, time.Minute)
	time.Sleep(1500 * time.Millisecond)
	run.pipe.stop(t)
	assertEveryRecordOnce(t, run.got, want, gone.ContentID, expired.ContentID)
	logs := run.logs.String()
	assert.Equal(t, 1, strings.Count(logs, gone.ContentID+" of"), "skipped once, logged once")
	assert.Contains(t, logs, "AF20050")
	assert.Contains(t, logs, "AF20051")
	// Each was asked for once: skipping is final, not a retry loop.
	assert.Equal(t, 2, sim.Stats().Count(o365sim.OpGetBlob, http.StatusNotFound, http.StatusBadRequest, http.StatusGone))
	assertCheckpointPast(t, stateDir, sim.TenantID(), gone)
	assertCheckpointPast(t, stateDir, sim.TenantID(), expired)
}

func TestFaultStaleNextPageRelistsTheWindowFromItsStart(t *testing.T) {
	sim := faultSim(t, o365sim.Config{Seed: 26, PageSize: 3})
	want := sim.ExpectedRecords()
	sim.Inject(o365sim.Fault{Kind: o365sim.FaultStaleNextPage, ContentType: o365sim.ContentTypeExchange, Times: 2})
	sim.Inject(o365sim.Fault{Kind: o365sim.FaultStaleNextPage, ContentType: o365sim.ContentTypeGeneral})
	run := startFaultRun(t, sim, faultOpts{})
	waitUnique(t, run.got, len(want), 30*time.Second)
	time.Sleep(time.Second)
	assertEveryRecordOnce(t, run.got, want)
	assert.Zero(t, sim.PendingFaults())
	assert.Equal(t, 3, sim.Stats().Count(o365sim.OpListContent, http.StatusBadRequest), "each stale page was asked for once, not retried as is")
}

func TestFaultCheckpointOlderThanRetentionReportsTheLossOnceAndContinues(t *testing.T) {
	// The API's clock is 3 days ahead of the local one: only the API's
	// clock (from its Date header) shows that the checkpoint, 5 days old
	// locally, is 8 days old for the API.
	skew := 72 * time.Hour
	sim := faultSim(t, o365sim.Config{Seed: 27, Now: func() time.Time { return time.Now().Add(skew) }})
	want := sim.ExpectedRecords()
	stateDir := t.TempDir()
	listedThrough := time.Now().Add(skew - 8*24*time.Hour).UTC().Truncate(time.Second)
	for _, ct := range o365api.AllContentTypes {
		writeCheckpoint(t, stateDir, sim.TenantID(), ct, contentCheckpoint{Version: checkpointVersion, ListedThrough: listedThrough, Delivered: map[string]time.Time{}})
	}
	run := startFaultRun(t, sim, faultOpts{stateDir: stateDir})
	waitUnique(t, run.got, len(want), time.Minute)
	time.Sleep(2 * time.Second) // more polls: the loss is reported once
	assertEveryRecordOnce(t, run.got, want)

	logs := run.logs.String()
	for _, ct := range o365api.AllContentTypes {
		assert.Equal(t, 1, strings.Count(logs, "Content of "+ct+" created between "+listedThrough.Format(time.RFC3339)), "the lost range of %s is reported once, with its start", ct)
	}
	assert.Contains(t, logs, "past the API's 7-day retention")
	assert.Zero(t, sim.Stats().Count(o365sim.OpListContent, http.StatusBadRequest), "no window was refused (AF20055)")
}

func TestFaultDuplicateRecordsAcrossBlobsAreDroppedOnce(t *testing.T) {
	for _, dedupe := range []bool{true, false} {
		t.Run(map[bool]string{true: "dedupe on", false: "dedupe off"}[dedupe], func(t *testing.T) {
			sim := faultSim(t, o365sim.Config{Seed: 28, DuplicatesEvery: 2})
			extra := ""
			if !dedupe {
				extra = "dedupe: false\n"
			}
			run := startFaultRun(t, sim, faultOpts{extraYAML: extra})
			initial := sim.ExpectedRecords()
			waitUnique(t, run.got, countUnique(initial), time.Minute)
			// Late content and a blob repeating records of an already
			// delivered one, both listable only now.
			sim.Inject(o365sim.Fault{Kind: o365sim.FaultLateBlob, ContentType: o365sim.ContentTypeExchange, Records: 4})
			sim.Inject(o365sim.Fault{Kind: o365sim.FaultDuplicateRecords, ContentType: o365sim.ContentTypeSharePoint, Records: 3})
			want := sim.ExpectedRecords()
			unique := countUnique(want)
			require.Greater(t, len(want)-unique, 10, "the tenant repeats records")
			waitUnique(t, run.got, unique, 30*time.Second)
			time.Sleep(2 * time.Second)
			u, total := run.got.counts()
			assert.Equal(t, unique, u, "every distinct record arrived")
			if dedupe {
				assert.Equal(t, unique, total, "every repeat across blobs was dropped")
			} else {
				assert.Equal(t, len(want), total, "without dedup each blob delivers its copy, once")
			}
		})
	}
}

func countUnique(want []o365sim.ExpectedRecord) int {
	n := 0
	for _, r := range want {
		if !r.Duplicate {
			n++
		}
	}
	return n
}

func TestFaultDedupeSurvivesNackOfTheFirstCopy(t *testing.T) {
	// Every batch is refused once. A repeated record whose first copy was
	// refused must still arrive: the nack forgets the batch's Ids.
	sim := faultSim(t, o365sim.Config{Seed: 29, DuplicatesEvery: 2})
	want := sim.ExpectedRecords()
	got := newReceived()
	startPipeline(t, sim, t.TempDir(), "auto_replay_nacks: false\n", refuseEachOnce(got, MetaRecordID))
	waitUnique(t, got, countUnique(want), time.Minute)
	time.Sleep(time.Second)
	u, total := got.counts()
	assert.Equal(t, countUnique(want), u)
	assert.Equal(t, u, total, "no record twice")
}

func TestFaultSubscriptionDisabledMidRunResumesWithoutRestart(t *testing.T) {
	old := subscriptionRestartCooldown
	subscriptionRestartCooldown = time.Second
	t.Cleanup(func() { subscriptionRestartCooldown = old })

	sim := faultSim(t, o365sim.Config{Seed: 30})
	run := startFaultRun(t, sim, faultOpts{})
	waitUnique(t, run.got, len(sim.ExpectedRecords()), time.Minute)
	startsBefore := sim.Stats().Count(o365sim.OpStartSubscription)

	// An admin disables Exchange; content keeps arriving meanwhile.
	sim.SetSubscription(o365sim.ContentTypeExchange, false)
	sim.AddBlob(o365sim.ContentTypeExchange, time.Now().Add(-5*time.Minute), 6)
	// And a blob GET is refused once with AF20023.
	sim.AddBlob(o365sim.ContentTypeGeneral, time.Now().Add(-5*time.Minute), 3)
	sim.Inject(o365sim.Fault{Kind: o365sim.FaultSubscriptionDisabled, Op: o365sim.OpGetBlob, ContentType: o365sim.ContentTypeGeneral})
	want := sim.ExpectedRecords()
	waitUnique(t, run.got, len(want), 30*time.Second)
	time.Sleep(time.Second)
	assertEveryRecordOnce(t, run.got, want)
	assert.Greater(t, sim.Stats().Count(o365sim.OpStartSubscription), startsBefore, "the input started the subscription again")
	assert.GreaterOrEqual(t, strings.Count(run.logs.String(), "Started the subscription to Audit.Exchange"), 2, "started at Connect, then again mid-run")
}

func TestFaultClockSkewKeepsWindowsValid(t *testing.T) {
	for _, tc := range []struct {
		name string
		skew time.Duration // API clock minus local clock
	}{
		{"local clock 2h ahead", -2 * time.Hour},
		{"local clock 30m behind", 30 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := faultSim(t, o365sim.Config{Seed: 31, Now: func() time.Time { return time.Now().Add(tc.skew) }})
			run := startFaultRun(t, sim, faultOpts{})
			// Running behind, the newest half hour of content is in the local
			// future; running ahead, windows would end in the API's future.
			waitUnique(t, run.got, len(sim.ExpectedRecords()), 30*time.Second)
			// Content that appears now, for the API's now: a local clock 2 h
			// ahead would have recorded this window as listed long ago.
			sim.AddBlob(o365sim.ContentTypeSharePoint, time.Now().Add(tc.skew-time.Minute), 5)
			want := sim.ExpectedRecords()
			waitUnique(t, run.got, len(want), 20*time.Second)
			time.Sleep(time.Second)
			assertEveryRecordOnce(t, run.got, want)
			assert.Zero(t, sim.Stats().Count(o365sim.OpListContent, http.StatusBadRequest), "no window refused")
			assert.Contains(t, run.logs.String(), "listing windows follow the API's clock")
		})
	}
}

func TestFaultForeignHostsNeverGetTheToken(t *testing.T) {
	var foreignHits atomic.Int32
	foreign := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		foreignHits.Add(1)
		_, _ = w.Write([]byte("[]"))
	}))
	t.Cleanup(foreign.Close)

	sim := faultSim(t, o365sim.Config{Seed: 32})
	bad := sim.AddForeignBlob(o365sim.ContentTypeExchange, time.Now().Add(-30*time.Minute), 4, foreign.URL)
	sim.Inject(o365sim.Fault{Kind: o365sim.FaultForeignNextPage, ContentType: o365sim.ContentTypeGeneral, URL: foreign.URL})
	want := sim.ExpectedRecords()

	run := startFaultRun(t, sim, faultOpts{})
	waitUnique(t, run.got, len(want)-bad.Records, time.Minute)
	waitFor(t, "the dead letter", 10*time.Second, func() bool { return run.deadLetterCount() >= 1 })
	time.Sleep(time.Second)
	assertEveryRecordOnce(t, run.got, want, bad.ContentID)

	run.mu.Lock()
	require.Len(t, run.deadLetters, 1)
	dl := run.deadLetters[0]
	run.mu.Unlock()
	assert.Equal(t, bad.ContentID, dl[MetaContentID])
	assert.Contains(t, dl[MetaDeadLetterError], "not the API host")
	assert.Empty(t, dl["raw"], "nothing was fetched")
	assert.Contains(t, run.logs.String(), "following the next page")
	assert.Zero(t, foreignHits.Load(), "the foreign host received no request")
}

func TestTLSSkipVerifyIsAnExplicitLoggedChoice(t *testing.T) {
	sim := faultSim(t, o365sim.Config{Seed: 33, History: time.Hour})
	run := startFaultRun(t, sim, faultOpts{tls: "tls:\n  enabled: true\n  skip_cert_verify: true\n"})
	waitUnique(t, run.got, len(sim.ExpectedRecords()), 30*time.Second)
	assert.Contains(t, run.logs.String(), "TLS certificate verification is off")

	// Verification is on by default: the sim's self-signed CA is refused.
	other := faultSim(t, o365sim.Config{Seed: 34, History: time.Hour})
	refused := startFaultRun(t, other, faultOpts{tls: "tls:\n  enabled: false\n"})
	waitFor(t, "a certificate error", 20*time.Second, func() bool { return strings.Contains(refused.logs.String(), "certificate") })
	u, _ := refused.got.counts()
	assert.Zero(t, u)
}
