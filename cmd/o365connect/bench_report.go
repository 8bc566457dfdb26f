package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// clockTick is USER_HZ, the unit of /proc's CPU times (100 on Linux).
const clockTick = 10 * time.Millisecond

// procCPU is the user+system CPU time of a process so far (0 when unknown).
func procCPU(pid int) time.Duration {
	if pid <= 0 {
		return 0
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces; fields start after its ')'.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * clockTick
}

// procPeakRSS is a process's peak resident set (VmHWM) in bytes.
func procPeakRSS(pid int) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			return kb * 1024
		}
	}
	return 0
}

// selfCPU is this process's CPU time: the simulator and the bench driver.
func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineBusy is the CPU time all processes have used on all CPUs
// (/proc/stat: everything but idle and iowait).
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	fields := strings.Fields(line)
	var busy int64
	for i, f := range fields[1:] {
		if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest time is already in user
			continue
		}
		v, _ := strconv.ParseInt(f, 10, 64)
		busy += v
	}
	return time.Duration(busy) * clockTick
}

func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Join(strings.Fields(string(b))[:3], " ")
}

func readPidFile(path string) int {
	if path == "" {
		return 0
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// benchMachine describes where the bench ran.
type benchMachine struct {
	commit, goVersion, cpuModel, kernel string
	cpus                                int
	memGB                               float64
	loadAtStart                         string
}

func describeMachine() benchMachine {
	m := benchMachine{cpus: runtime.NumCPU(), goVersion: runtime.Version()}
	if out, err := exec.Command("git", "rev-parse", "--short=12", "HEAD").Output(); err == nil {
		m.commit = strings.TrimSpace(string(out))
		if st, err := exec.Command("git", "status", "--porcelain", "--untracked-files=no").Output(); err == nil && len(strings.TrimSpace(string(st))) > 0 {
			m.commit += " (with uncommitted changes)"
		}
	}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.cpuModel = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "MemTotal:"); ok {
				kb, _ := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 64)
				m.memGB = kb / 1024 / 1024
			}
		}
	}
	m.loadAtStart = loadAverage()
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.kernel = strings.TrimSpace(string(b))
	}
	return m
}

type benchReportInput struct {
	title        string
	machine      benchMachine
	tenant       *benchTenant
	pipelines    []benchPipeline
	results      map[string][]benchRun
	runs         int
	args         []string
	brokerOpts   string
	pollInterval time.Duration
	liveInterval time.Duration
	liveRecords  int
}

// spread is min / median / max of one figure over runs.
type spread struct{ min, med, max float64 }

func spreadOf(runs []benchRun, f func(benchRun) float64) spread {
	vs := make([]float64, len(runs))
	for i, r := range runs {
		vs[i] = f(r)
	}
	slices.Sort(vs)
	if len(vs) == 0 {
		return spread{}
	}
	med := vs[len(vs)/2]
	if len(vs)%2 == 0 {
		med = (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
	}
	return spread{vs[0], med, vs[len(vs)-1]}
}

func (s spread) format(prec int) string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'f', prec, 64) }
	if s.min == s.max {
		return "**" + f(s.med) + "**"
	}
	return fmt.Sprintf("**%s** (%s–%s)", f(s.med), f(s.min), f(s.max))
}

func percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	// Nearest rank: with fewer than 100 samples p99 is the maximum.
	i := int(float64(len(s))*p/100+0.999999) - 1
	return s[max(0, min(len(s)-1, i))]
}

func renderBenchReport(in benchReportInput) string {
	var b strings.Builder
	m, t := in.machine, in.tenant
	fmt.Fprintf(&b, "# %s, %s\n\n", in.title, time.Now().UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "- commit: `%s`, %s\n", m.commit, m.goVersion)
	fmt.Fprintf(&b, "- machine: %d CPUs (%s), %.1f GiB memory, Linux %s; load average at start %s\n", m.cpus, m.cpuModel, m.memGB, m.kernel, m.loadAtStart)
	fmt.Fprintf(&b, "- broker: Apache Kafka 4.1.1, single node on the same machine (scripts/kafka/broker.sh), JVM `%s`\n", in.brokerOpts)
	fmt.Fprintf(&b, "- runs: %d per pipeline; figures are **median** (min–max)\n", in.runs)
	fmt.Fprintf(&b, "- command: `o365connect %s`\n", strings.Join(in.args, " "))
	fmt.Fprintf(&b, "- backlog: %d records (%.1f MB) in %d blobs, all five content types over 167 h; largest blob %d records, %.1f MB\n",
		t.Records(), float64(t.bytes)/1e6, len(t.blobs), t.huge.Records, t.hugeMB)
	fmt.Fprintf(&b, "- record sizes: median %d B, p90 %d B, p99 %d B, max %d B; %.1f%% of records 10 KB or more\n\n",
		t.sizePercentile(50), t.sizePercentile(90), t.sizePercentile(99), t.sizePercentile(100), 100*t.shareAtLeast(10_000))

	b.WriteString("| pipeline | records/s | MB/s | collector CPU s per 1M records | collector peak RSS (MB) | drain (s) |\n")
	b.WriteString("|---|---|---|---|---|---|\n")
	for _, p := range in.pipelines {
		rs := in.results[p.name]
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", p.name,
			spreadOf(rs, func(r benchRun) float64 { return float64(r.records) / r.drain.Seconds() }).format(0),
			spreadOf(rs, func(r benchRun) float64 {
				return float64(t.bytes) / 1e6 / r.drain.Seconds() * float64(r.records) / float64(t.Records())
			}).format(1),
			spreadOf(rs, func(r benchRun) float64 { return r.childCPU.Seconds() / float64(r.records) * 1e6 }).format(1),
			spreadOf(rs, func(r benchRun) float64 { return float64(r.childPeakRSS) / 1e6 }).format(0),
			spreadOf(rs, func(r benchRun) float64 { return r.drain.Seconds() }).format(1))
	}

	b.WriteString("\nWhere the machine's CPU went during the drain (share of all CPUs' time, median):\n\n")
	b.WriteString("| pipeline | collector | Kafka broker | simulator + bench driver | everything else | idle |\n|---|---|---|---|---|---|\n")
	for _, p := range in.pipelines {
		rs := in.results[p.name]
		share := func(f func(benchRun) time.Duration) string {
			return spreadOf(rs, func(r benchRun) float64 {
				return 100 * f(r).Seconds() / (r.drain.Seconds() * float64(m.cpus))
			}).format(0) + "%"
		}
		fmt.Fprintf(&b, "| %s | %s | %s | %s | %s | %s |\n", p.name,
			share(func(r benchRun) time.Duration { return r.childCPU }),
			share(func(r benchRun) time.Duration { return r.brokerCPU }),
			share(func(r benchRun) time.Duration { return r.driverCPU }),
			share(func(r benchRun) time.Duration {
				return max(0, r.machineBusy-r.childCPU-r.brokerCPU-r.driverCPU)
			}),
			share(func(r benchRun) time.Duration {
				return max(0, time.Duration(float64(r.drain)*float64(m.cpus))-r.machineBusy)
			}))
	}

	b.WriteString("\nAPI requests in a fault-free drain (simulator's count; budget and simulated limit both 60,000/min):\n\n")
	b.WriteString("| pipeline | blobs | blob fetches | per blob | listing pages | token | other | throttles |\n|---|---|---|---|---|---|---|---|\n")
	for _, p := range in.pipelines {
		for i, r := range in.results[p.name] {
			fmt.Fprintf(&b, "| %s #%d | %d | %d | %.2f | %d | %d | %d | %d |\n", p.name, i+1, r.blobs, r.reqBlob,
				float64(r.reqBlob)/float64(r.blobs), r.reqList, r.reqToken, r.reqOther, r.throttles)
		}
	}

	fmt.Fprintf(&b, "\nLive tail: after the last run's drain, a blob of %d records added every %s; latency from listable (AddBlob) to the broker's LogAppendTime of its last record; poll_interval %s:\n\n",
		in.liveRecords, in.liveInterval, in.pollInterval)
	b.WriteString("| pipeline | blobs | p50 | p99 | max | not delivered |\n|---|---|---|---|---|---|\n")
	for _, p := range in.pipelines {
		rs := in.results[p.name]
		last := rs[len(rs)-1]
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %d |\n", p.name, last.liveBlobCount,
			percentile(last.live, 50).Round(10*time.Millisecond), percentile(last.live, 99).Round(10*time.Millisecond),
			percentile(last.live, 100).Round(10*time.Millisecond), last.liveMissing)
	}

	b.WriteString("\nTargets (2 CPUs, broker on the same machine):\n\n| target | measured (median) | met |\n|---|---|---|\n")
	med := func(name string, f func(benchRun) float64) (float64, bool) {
		rs, ok := in.results[name]
		if !ok {
			return 0, false
		}
		return spreadOf(rs, f).med, true
	}
	rate := func(r benchRun) float64 { return float64(r.records) / r.drain.Seconds() }
	yes := func(ok bool) string {
		if ok {
			return "yes"
		}
		return "**no**"
	}
	if v, ok := med("raw", rate); ok {
		fmt.Fprintf(&b, "| raw pipeline ≥ 150,000 records/s | %.0f | %s |\n", v, yes(v >= 150_000))
	}
	if v, ok := med("normalize", rate); ok {
		fmt.Fprintf(&b, "| with normalisation ≥ 40,000 records/s | %.0f | %s |\n", v, yes(v >= 40_000))
	}
	var peak int64
	var blobs, fetches, throttles int
	var worstP99 time.Duration
	for _, p := range in.pipelines {
		for _, r := range in.results[p.name] {
			peak = max(peak, r.childPeakRSS)
			blobs += r.blobs
			fetches += r.reqBlob
			throttles += r.throttles
		}
		rs := in.results[p.name]
		worstP99 = max(worstP99, percentile(rs[len(rs)-1].live, 99))
	}
	fmt.Fprintf(&b, "| collector peak RSS ≤ 150 MB with the %.0f MB blob | %.0f MB (highest of all runs) | %s |\n", t.hugeMB, float64(peak)/1e6, yes(peak <= 150e6))
	fmt.Fprintf(&b, "| one request per blob, zero throttles | %d fetches for %d blobs, %d throttles | %s |\n", fetches, blobs, throttles, yes(fetches == blobs && throttles == 0))
	fmt.Fprintf(&b, "| live tail p99 ≤ poll interval + 2 s (%s) | %s (worst pipeline) | %s |\n", in.pollInterval+2*time.Second,
		worstP99.Round(10*time.Millisecond), yes(worstP99 > 0 && worstP99 <= in.pollInterval+2*time.Second))

	b.WriteString("\nPer run (redelivered: records in Kafka beyond the tenant's when the drain was counted, at-least-once):\n\n| run | records | redelivered | drain (s) | records/s | collector CPU (s) | peak RSS (MB) | broker CPU (s) | sim+driver CPU (s) | cached blob bodies served |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, p := range in.pipelines {
		for i, r := range in.results[p.name] {
			fmt.Fprintf(&b, "| %s #%d | %d | %d | %.2f | %.0f | %.1f | %.0f | %.1f | %.1f | %d |\n", p.name, i+1, r.records, r.excess, r.drain.Seconds(),
				float64(r.records)/r.drain.Seconds(), r.childCPU.Seconds(), float64(r.childPeakRSS)/1e6,
				r.brokerCPU.Seconds(), r.driverCPU.Seconds(), r.cacheHits)
			for _, f := range r.profileFiles {
				fmt.Fprintf(&b, "|  profile | `%s` |||||||\n", f)
			}
		}
	}
	return b.String()
}
