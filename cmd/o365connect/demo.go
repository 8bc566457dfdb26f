package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/urfave/cli/v2"

	"github.com/o365connect/o365connect/config"
	"github.com/o365connect/o365connect/input/o365sim"
)

// demoCommand runs the embedded pipeline against an in-process simulated
// tenant until every simulated record has landed, then prints where they went.
func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "Run the embedded pipeline against a simulated tenant and show every content type flowing (make run)",
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Value: "out/demo", Usage: "folder for the records, checkpoints and the simulator CA"},
			&cli.DurationFlag{Name: "timeout", Value: 3 * time.Minute, Usage: "give up when not every record has landed by then"},
			&cli.StringFlag{Name: "log-level", Value: "WARN", Usage: "pipeline log level"},
		},
		Action: func(c *cli.Context) error {
			return runDemo(c.Context, c.String("dir"), c.Duration("timeout"), c.String("log-level"))
		},
	}
}

func runDemo(ctx context.Context, dir string, timeout time.Duration, logLevel string) error {
	// A fresh folder every run: the demo shows a first run from scratch.
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("clearing %s: %w", dir, err)
	}
	sim, err := o365sim.New(o365sim.Config{Seed: 1, History: 24 * time.Hour, BlobInterval: 30 * time.Minute})
	if err != nil {
		return err
	}
	if err := sim.Start("127.0.0.1:0"); err != nil {
		return err
	}
	defer sim.Close()
	caFile := filepath.Join(dir, "simulator-ca.pem")
	if err := writePrivateFile(caFile, sim.CACertPEM()); err != nil {
		return err
	}
	outDir := filepath.Join(dir, "records")
	env := map[string]string{
		"O365_TENANT_ID":     sim.TenantID(),
		"O365_CLIENT_ID":     sim.ClientID(),
		"O365_CLIENT_SECRET": sim.ClientSecret(),
		"O365_API_URL":       sim.URL(),
		"O365_LOGIN_URL":     sim.URL(),
		"O365_CA_FILE":       caFile,
		"O365_OUT_DIR":       outDir,
		"O365_STATE_DIR":     filepath.Join(dir, "state"),
		"O365_LOG_LEVEL":     logLevel,
	}
	builder := service.NewStreamBuilder()
	builder.SetEnvVarLookupFunc(func(name string) (string, bool) {
		if v, ok := env[name]; ok {
			return v, true
		}
		return os.LookupEnv(name)
	})
	if err := builder.SetYAML(config.Demo); err != nil {
		return fmt.Errorf("parsing the embedded demo pipeline: %w", err)
	}
	stream, err := builder.Build()
	if err != nil {
		return fmt.Errorf("building the embedded demo pipeline: %w", err)
	}

	want := len(sim.ExpectedRecords())
	fmt.Printf("Simulated tenant on %s holds %d records in 5 content types; collecting into %s ...\n", sim.URL(), want, outDir)
	started := time.Now()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- stream.Run(runCtx) }()

	deadline := time.After(timeout)
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	var counts map[string]int
wait:
	for {
		select {
		case err := <-runErr:
			return fmt.Errorf("the pipeline stopped early: %w", err)
		case <-deadline:
			break wait
		case <-tick.C:
			if counts, err = countLines(outDir); err != nil {
				return err
			}
			if total(counts) >= want {
				break wait
			}
		}
	}
	stopCtx, stopCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer stopCancel()
	if err := stream.Stop(stopCtx); err != nil {
		return fmt.Errorf("stopping the pipeline: %w", err)
	}
	if counts, err = countLines(outDir); err != nil {
		return err
	}
	printCounts(counts, outDir)
	got := total(counts)
	if got < want {
		return fmt.Errorf("only %d of %d records landed within %v", got, want, timeout)
	}
	fmt.Printf("All %d records landed in %.1fs.\n", got, time.Since(started).Seconds())
	return nil
}

func countLines(dir string) (map[string]int, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return map[string]int{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	counts := map[string]int{}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		f, err := os.Open(filepath.Join(dir, e.Name()))
		if err != nil {
			return nil, err
		}
		scanner := bufio.NewScanner(f)
		scanner.Buffer(make([]byte, 1<<20), 64<<20)
		n := 0
		for scanner.Scan() {
			n++
		}
		f.Close()
		if err := scanner.Err(); err != nil {
			return nil, fmt.Errorf("reading %s: %w", e.Name(), err)
		}
		counts[strings.TrimSuffix(e.Name(), ".jsonl")] = n
	}
	return counts, nil
}

func total(counts map[string]int) int {
	n := 0
	for _, c := range counts {
		n += c
	}
	return n
}

func printCounts(counts map[string]int, dir string) {
	names := make([]string, 0, len(counts))
	for name := range counts {
		names = append(names, name)
	}
	sort.Strings(names)
	fmt.Printf("\n%-32s %8s\n", "topic (file under "+dir+")", "records")
	for _, name := range names {
		fmt.Printf("%-32s %8d\n", name, counts[name])
	}
}
