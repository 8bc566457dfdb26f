package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"
	"gopkg.in/yaml.v3"

	"github.com/o365connect/o365connect/input/o365sim"
)

// benchCommand drains a large simulated backlog through the real binary
// into a real Kafka broker and reports throughput, CPU, memory, API
// requests and live-tail latency (bench/README.md).
func benchCommand() *cli.Command {
	return &cli.Command{
		Name:  "bench",
		Usage: "Benchmark the production pipeline: drain a simulated 7-day backlog into Kafka and report the costs",
		Description: `Serves a deterministic simulated tenant (all five content types, 7 days, one huge blob),
runs the o365connect binary on the production config against it and a Kafka broker until the
backlog is in Kafka (counted by the broker's end offsets), once per run for the raw pipeline
(input -> route -> kafka_franz) and once with normalisation (config/kafka.yaml as is); then adds blobs while the last run
of each pipeline tails the feed, and times each from listable to acknowledged by the broker.
Writes a Markdown table to stdout and to --out. See bench/README.md.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "brokers", EnvVars: []string{"O365_KAFKA_BROKERS"}, Usage: "Kafka seed brokers (host:port,...)"},
			&cli.StringFlag{Name: "binary", Value: "bin/o365connect", Usage: "the o365connect binary to benchmark"},
			&cli.StringFlag{Name: "config", Value: "config/kafka.yaml", Usage: "the production pipeline config"},
			&cli.IntFlag{Name: "records", Value: 1_000_000, Usage: "records in the backlog, besides the huge blob"},
			&cli.IntFlag{Name: "huge-records", Value: 80_000, Usage: "records in the huge blob (about 0.8 KB each)"},
			&cli.IntFlag{Name: "records-per-blob", Value: 1000, Usage: "average records per blob"},
			&cli.IntFlag{Name: "runs", Value: 3, EnvVars: []string{"BENCH_RUNS"}, Usage: "runs per pipeline; the table shows min/median/max"},
			&cli.StringFlag{Name: "pipelines", Value: "raw,normalize", Usage: "pipelines to run: raw, normalize"},
			&cli.IntFlag{Name: "live-blobs", Value: 30, Usage: "blobs added during the live-tail phase"},
			&cli.IntFlag{Name: "live-records", Value: 200, Usage: "records per live-tail blob"},
			&cli.DurationFlag{Name: "live-interval", Value: 2 * time.Second, Usage: "time between two live-tail blobs"},
			&cli.DurationFlag{Name: "poll-interval", Value: 5 * time.Second, Usage: "the input's poll_interval"},
			&cli.DurationFlag{Name: "drain-timeout", Value: 15 * time.Minute, Usage: "give up on a run after this long"},
			&cli.StringFlag{Name: "profile-dir", EnvVars: []string{"BENCH_PROFILE_DIR"}, Usage: "when set, save CPU and heap profiles of the first run of each pipeline here"},
			&cli.StringFlag{Name: "broker-pid-file", EnvVars: []string{"BENCH_BROKER_PID_FILE"}, Usage: "the broker's pid file, to measure its CPU"},
			&cli.StringFlag{Name: "broker-opts", EnvVars: []string{"KAFKA_JAVA_OPTS"}, Usage: "the broker's JVM flags, for the report only"},
			&cli.StringFlag{Name: "out", Value: "bench/results", Usage: "folder of the results file (<date>.md); empty for stdout only"},
			&cli.StringFlag{Name: "title", Value: "o365connect benchmark", Usage: "heading of the results"},
			&cli.Int64Flag{Name: "seed", Value: 1, Usage: "seed of the simulated tenant"},
			&cli.StringSliceFlag{Name: "child-env", Usage: "KEY=VALUE set for the collector only, e.g. GOMEMLIMIT=120MiB (repeatable)"},
		},
		Action: runBench,
	}
}

// benchPipeline is one of the pipelines the bench compares.
type benchPipeline struct {
	name, desc string
	keep       func(label string) bool // which pipeline processors stay
}

var benchPipelines = map[string]benchPipeline{
	"raw": {name: "raw", desc: "input → route (the dead-letter switch around office365_route) → kafka_franz", keep: func(l string) bool { return l == "route" }},
	"normalize": {name: "normalize", desc: "input → office365_normalize → office365_redact_dlp → route → kafka_franz (config/kafka.yaml as is)",
		keep: func(string) bool { return true }},
}

// benchRun is what one run measured.
type benchRun struct {
	pipeline string
	drain    time.Duration
	records  int64
	childCPU time.Duration // at drain
	// childPeakRSS is VmHWM at drain, in bytes. Not rusage's Maxrss: for a child of a large
	// process Linux reports the parent's RSS at fork there (the bench driver holds ~3 GB).
	childPeakRSS  int64
	driverCPU     time.Duration
	brokerCPU     time.Duration
	machineBusy   time.Duration // all CPUs, all processes
	reqBlob       int
	reqList       int
	reqToken      int
	reqOther      int
	throttles     int
	cacheHits     int64
	live          []time.Duration // listable -> acked, per live blob
	liveMissing   int
	profileFiles  []string
	pollInterval  time.Duration
	liveBlobCount int
	blobs         int   // listable when the run started
	excess        int64 // records in Kafka beyond the tenant's, redelivered, at drain
}

func runBench(c *cli.Context) error {
	ctx, stop := signal.NotifyContext(c.Context, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if c.String("brokers") == "" {
		return errors.New("--brokers (or O365_KAFKA_BROKERS) is not set: start a broker with scripts/kafka/broker.sh")
	}
	var pipelines []benchPipeline
	for _, name := range strings.Split(c.String("pipelines"), ",") {
		p, ok := benchPipelines[strings.TrimSpace(name)]
		if !ok {
			return fmt.Errorf("--pipelines: %q is not one of raw, normalize", name)
		}
		pipelines = append(pipelines, p)
	}
	runs := c.Int("runs")
	if runs < 1 {
		return fmt.Errorf("--runs: %d must be at least 1", runs)
	}
	binary, err := filepath.Abs(c.String("binary"))
	if err != nil {
		return err
	}
	machine := describeMachine()

	logf("building the tenant: %d records in blobs of about %d, plus a blob of %d records", c.Int("records"), c.Int("records-per-blob"), c.Int("huge-records"))
	tenant, err := newBenchTenant(c.Int64("seed"), c.Int("records"), c.Int("records-per-blob"), c.Int("huge-records"))
	if err != nil {
		return err
	}
	if err := tenant.start(); err != nil {
		return err
	}
	defer tenant.close()
	warmStart := time.Now()
	if err := tenant.warm(ctx, 2); err != nil {
		return err
	}
	logf("tenant ready in %s: %d blobs, %d records, %.1f MB of records; largest blob %d records (%.1f MB)",
		time.Since(warmStart).Round(time.Millisecond), len(tenant.blobs), tenant.Records(), float64(tenant.bytes)/1e6, tenant.huge.Records, tenant.hugeMB)

	kafka, err := newBenchKafka(c.String("brokers"))
	if err != nil {
		return err
	}
	defer kafka.close()

	work, err := os.MkdirTemp("", "o365connect-bench-")
	if err != nil {
		return err
	}
	keepWork := true // kept when a run fails, for its logs
	defer func() {
		if keepWork {
			logf("logs and configs kept in %s", work)
			return
		}
		_ = os.RemoveAll(work)
	}()
	caFile := filepath.Join(work, "ca.pem")
	if err := os.WriteFile(caFile, tenant.caPEM, 0o600); err != nil {
		return err
	}

	b := &bencher{
		c: c, tenant: tenant, kafka: kafka, binary: binary, work: work, caFile: caFile,
		brokerPid: readPidFile(c.String("broker-pid-file")), stamp: time.Now().UTC().Format("20060102T150405"),
	}
	results := map[string][]benchRun{}
	for _, p := range pipelines {
		cfgPath, err := b.writeConfig(p)
		if err != nil {
			return err
		}
		for i := 1; i <= runs; i++ {
			r, err := b.run(ctx, p, cfgPath, i, i == runs)
			if err != nil {
				return fmt.Errorf("%s run %d: %w", p.name, i, err)
			}
			logf("%s run %d/%d: %d records in %s = %.0f records/s; collector %.1f CPU s, peak RSS %.0f MB (load average now %s)",
				p.name, i, runs, r.records, r.drain.Round(time.Millisecond), float64(r.records)/r.drain.Seconds(),
				r.childCPU.Seconds(), float64(r.childPeakRSS)/1e6, loadAverage())
			results[p.name] = append(results[p.name], r)
		}
	}

	keepWork = false
	report := renderBenchReport(benchReportInput{
		title: c.String("title"), machine: machine, tenant: tenant, pipelines: pipelines, results: results, runs: runs,
		args: os.Args[1:], brokerOpts: c.String("broker-opts"), pollInterval: c.Duration("poll-interval"),
		liveInterval: c.Duration("live-interval"), liveRecords: c.Int("live-records"),
	})
	fmt.Print(report)
	if dir := c.String("out"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		path := filepath.Join(dir, time.Now().UTC().Format("2006-01-02")+".md")
		if err := os.WriteFile(path, []byte(report), 0o644); err != nil { //nolint:gosec // a report for the repository
			return fmt.Errorf("writing %s: %w", path, err)
		}
		logf("wrote %s", path)
	}
	return nil
}

// bencher runs the binary once per call of run.
type bencher struct {
	c         *cli.Context
	tenant    *benchTenant
	kafka     *benchKafka
	binary    string
	work      string
	caFile    string
	brokerPid int
	stamp     string
}

// writeConfig derives the run's config from the production one: the same
// file, with pipeline processors the pipeline does not keep removed and
// Benthos' /debug/pprof endpoints on.
func (b *bencher) writeConfig(p benchPipeline) (string, error) {
	raw, err := os.ReadFile(b.c.String("config"))
	if err != nil {
		return "", err
	}
	var doc map[string]any
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return "", fmt.Errorf("parsing %s: %w", b.c.String("config"), err)
	}
	if pipeline, ok := doc["pipeline"].(map[string]any); ok {
		procs, _ := pipeline["processors"].([]any)
		var kept []any
		for _, proc := range procs {
			label, _ := proc.(map[string]any)["label"].(string)
			if p.keep(label) {
				kept = append(kept, proc)
			}
		}
		pipeline["processors"] = kept
	}
	httpCfg, _ := doc["http"].(map[string]any)
	if httpCfg == nil {
		httpCfg = map[string]any{}
		doc["http"] = httpCfg
	}
	httpCfg["debug_endpoints"] = true
	out, err := yaml.Marshal(doc)
	if err != nil {
		return "", err
	}
	path := filepath.Join(b.work, "bench-"+p.name+".yaml")
	return path, os.WriteFile(path, out, 0o600)
}

func (b *bencher) run(ctx context.Context, p benchPipeline, cfgPath string, n int, live bool) (benchRun, error) {
	r := benchRun{pipeline: p.name, pollInterval: b.c.Duration("poll-interval")}
	prefix := fmt.Sprintf("bench.%s.%s.%d.", b.stamp, p.name, n)
	stateDir := filepath.Join(b.work, fmt.Sprintf("state-%s-%d", p.name, n))
	httpAddr, err := freeLoopbackAddr()
	if err != nil {
		return r, err
	}
	sim := b.tenant.sim
	env := map[string]string{
		"O365_TENANT_ID":               sim.TenantID(),
		"O365_CLIENT_ID":               sim.ClientID(),
		"O365_CLIENT_SECRET":           sim.ClientSecret(),
		"O365_API_URL":                 b.tenant.url,
		"O365_LOGIN_URL":               b.tenant.url,
		"O365_TLS_CUSTOM":              "true",
		"O365_CA_FILE":                 b.caFile,
		"O365_POLL_INTERVAL":           b.c.Duration("poll-interval").String(),
		"O365_MAX_REQUESTS_PER_MINUTE": strconv.Itoa(benchRequestsPerMinute),
		"O365_BACKFILL":                "168h",
		"O365_STATE_DIR":               stateDir,
		"O365_HTTP_ADDRESS":            httpAddr,
		"O365_LOG_LEVEL":               "WARN",
		"KAFKA_BROKERS":                strings.Join(b.kafka.brokers, ","),
		"KAFKA_TOPIC_PREFIX":           prefix,
		"KAFKA_TOPIC_PARTITIONS":       "3",
		"KAFKA_REPLICATION_FACTOR":     "1",
	}
	cmd := exec.Command(b.binary, "run", cfgPath)
	cmd.Env = os.Environ()
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Env = append(cmd.Env, b.c.StringSlice("child-env")...)
	logPath := filepath.Join(b.work, fmt.Sprintf("%s-%d.log", p.name, n))
	logFile, err := os.Create(logPath)
	if err != nil {
		return r, err
	}
	defer logFile.Close()
	cmd.Stdout, cmd.Stderr = logFile, logFile

	stats0, hits0 := sim.Stats(), b.tenant.cache.hits.Load()
	driver0, broker0, machine0 := selfCPU(), procCPU(b.brokerPid), machineBusy()
	total := int64(b.tenant.Total())
	r.blobs = len(b.tenant.blobs) + b.tenant.addedN
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return r, fmt.Errorf("starting %s: %w", b.binary, err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	defer func() {
		select {
		case <-exited:
		default:
			_ = cmd.Process.Kill()
			<-exited
		}
	}()

	profDone := make(chan []string, 1)
	if dir := b.c.String("profile-dir"); dir != "" && n == 1 {
		go func() { profDone <- b.profile(ctx, httpAddr, dir, p.name) }()
	} else {
		profDone <- nil
	}

	deadline := time.After(b.c.Duration("drain-timeout"))
	var written int64
	for written < total {
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-exited:
			return r, fmt.Errorf("the collector exited before draining (%d of %d records written); log %s:\n%s", written, total, logPath, tailFile(logPath, 30))
		case <-deadline:
			return r, fmt.Errorf("%d of %d records written after %s; log %s:\n%s", written, total, b.c.Duration("drain-timeout"), logPath, tailFile(logPath, 30))
		case <-time.After(100 * time.Millisecond):
		}
		if _, sum, err := b.kafka.endOffsets(ctx, prefix); err == nil {
			written = sum
		}
	}
	r.drain = time.Since(start)
	r.records = total
	r.childCPU = procCPU(cmd.Process.Pid)
	r.childPeakRSS = procPeakRSS(cmd.Process.Pid)
	r.driverCPU = selfCPU() - driver0
	r.brokerCPU = procCPU(b.brokerPid) - broker0
	r.machineBusy = machineBusy() - machine0
	stats := sim.Stats()
	r.reqBlob = stats.Count(o365sim.OpGetBlob) - stats0.Count(o365sim.OpGetBlob)
	r.reqList = stats.Count(o365sim.OpListContent) - stats0.Count(o365sim.OpListContent)
	r.reqToken = stats.Count(o365sim.OpToken) - stats0.Count(o365sim.OpToken)
	for _, op := range []o365sim.Op{o365sim.OpStartSubscription, o365sim.OpListSubscriptions, o365sim.OpOpenIDConfiguration, o365sim.OpListNotifications, o365sim.OpUnknown} {
		r.reqOther += stats.Count(op) - stats0.Count(op)
	}
	r.throttles = stats.Throttled - stats0.Throttled
	r.cacheHits = b.tenant.cache.hits.Load() - hits0
	// At-least-once: a redelivered batch shows as more records than the tenant holds.
	r.excess = written - total
	r.profileFiles = <-profDone

	if live {
		if err := b.livePhase(ctx, &r, prefix); err != nil {
			return r, err
		}
	}

	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
	}
	delCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := b.kafka.deleteTopics(delCtx, prefix); err != nil {
		logf("warning: %v", err)
	}
	return r, nil
}

// livePhase adds blobs one by one while the collector tails the feed, and
// times each from AddBlob (listable) to its last record's broker timestamp.
func (b *bencher) livePhase(ctx context.Context, r *benchRun, prefix string) error {
	topics, err := b.kafka.topics(ctx, prefix)
	if err != nil {
		return err
	}
	if err := b.kafka.useLogAppendTime(ctx, topics); err != nil {
		return err
	}
	offsets, _, err := b.kafka.endOffsets(ctx, prefix)
	if err != nil {
		return err
	}
	arrivals, err := b.kafka.consumeFrom(offsets)
	if err != nil {
		return err
	}
	defer arrivals.stop()

	type added struct {
		id      string
		records int
		at      time.Time
	}
	var blobs []added
	count, interval := b.c.Int("live-blobs"), b.c.Duration("live-interval")
	for i := range count {
		ct := o365sim.ContentTypes[i%len(o365sim.ContentTypes)]
		info := b.tenant.sim.AddBlob(ct, time.Time{}, b.c.Int("live-records"))
		blobs = append(blobs, added{id: info.ContentID, records: info.Records, at: time.Now()})
		b.tenant.added += info.Records
		b.tenant.addedN++
		select {
		case <-time.After(interval):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	r.liveBlobCount = len(blobs)
	deadline := time.Now().Add(2*r.pollInterval + 30*time.Second)
	for {
		done := 0
		for _, bl := range blobs {
			if n, _ := arrivals.get(bl.id); n >= bl.records {
				done++
			}
		}
		if done == len(blobs) || time.Now().After(deadline) {
			break
		}
		select {
		case <-time.After(100 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	for _, bl := range blobs {
		n, newest := arrivals.get(bl.id)
		if n < bl.records {
			r.liveMissing++
			continue
		}
		r.live = append(r.live, newest.Sub(bl.at))
	}
	return nil
}

// profile saves a CPU profile of the middle of the drain and a heap
// profile after it, from Benthos' debug endpoints.
func (b *bencher) profile(ctx context.Context, addr, dir, name string) []string {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		logf("profile: %v", err)
		return nil
	}
	select {
	case <-time.After(3 * time.Second):
	case <-ctx.Done():
		return nil
	}
	var files []string
	for _, prof := range []struct{ path, file string }{
		{"/debug/pprof/profile?seconds=10", name + ".cpu.pprof"},
		{"/debug/pprof/heap", name + ".heap.pprof"},
		{"/debug/pprof/allocs", name + ".allocs.pprof"},
	} {
		path := filepath.Join(dir, prof.file)
		if err := fetchTo(ctx, "http://"+addr+prof.path, path); err != nil {
			logf("profile %s: %v", prof.file, err)
			continue
		}
		files = append(files, path)
	}
	return files
}

func fetchTo(ctx context.Context, url, path string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", url, res.Status)
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if _, err := io.Copy(f, res.Body); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func freeLoopbackAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func tailFile(path string, lines int) string {
	b, _ := os.ReadFile(path)
	parts := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(parts) > lines {
		parts = parts[len(parts)-lines:]
	}
	return strings.Join(parts, "\n")
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}
