package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/redpanda-data/benthos/v4/public/service"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/urfave/cli/v2"

	"github.com/o365connect/o365connect/config"
	"github.com/o365connect/o365connect/input/o365sim"
)

// demoCommand runs the production pipeline (config/kafka.yaml) against an
// in-process simulated tenant and an in-process Kafka broker until every
// simulated record has landed, then prints how many reached each topic.
func demoCommand() *cli.Command {
	return &cli.Command{
		Name:  "demo",
		Usage: "Run the production pipeline against a simulated tenant and an embedded Kafka broker (make run)",
		Description: `Starts a simulated tenant (24 hours of content in all five content types) and an in-process
Kafka broker (kfake, for this demo only), runs the embedded config/kafka.yaml against them until
every record has landed, and prints the record count of each workload topic.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "dir", Value: "out/demo", Usage: "folder for checkpoints, the simulator CA and the mappings"},
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

	broker, err := kfake.NewCluster(kfake.NumBrokers(1)) // kfake listens on 127.0.0.1 only
	if err != nil {
		return fmt.Errorf("starting the embedded Kafka broker: %w", err)
	}
	defer broker.Close()

	env, err := demoEnvironment(dir, sim, broker.ListenAddrs(), logLevel)
	if err != nil {
		return err
	}
	builder := service.NewStreamBuilder()
	builder.SetEnvVarLookupFunc(func(name string) (string, bool) {
		if v, ok := env[name]; ok {
			return v, true
		}
		return "", false // the demo must not pick up a real tenant or cluster from the shell
	})
	if err := builder.SetYAML(config.Kafka); err != nil {
		return fmt.Errorf("parsing the embedded config/kafka.yaml: %w", err)
	}
	stream, err := builder.Build()
	if err != nil {
		return fmt.Errorf("building the embedded config/kafka.yaml: %w", err)
	}

	want := len(sim.ExpectedRecords())
	fmt.Printf("Simulated tenant on %s holds %d records in 5 content types.\n", sim.URL(), want)
	fmt.Printf("Running config/kafka.yaml into the embedded Kafka broker at %s ...\n", strings.Join(broker.ListenAddrs(), ","))
	started := time.Now()
	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	runErr := make(chan error, 1)
	go func() { runErr <- stream.Run(runCtx) }()

	counts, countErr := countTopicRecords(runCtx, broker.ListenAddrs(), want, timeout, runErr)
	stopCtx, stopCancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer stopCancel()
	if err := stream.Stop(stopCtx); err != nil {
		return fmt.Errorf("stopping the pipeline: %w", err)
	}
	printCounts(counts)
	if countErr != nil {
		return countErr
	}
	fmt.Printf("All %d records landed in %.1fs, each keyed by its record Id.\n", total(counts), time.Since(started).Seconds())
	return nil
}

// demoEnvironment writes the simulator's CA, which the pipeline must trust,
// and returns the variables config/kafka.yaml takes.
func demoEnvironment(dir string, sim *o365sim.Server, brokers []string, logLevel string) (map[string]string, error) {
	caFile := filepath.Join(dir, "simulator-ca.pem")
	if err := writePrivateFile(caFile, sim.CACertPEM()); err != nil {
		return nil, err
	}
	return map[string]string{
		"O365_TENANT_ID":         sim.TenantID(),
		"O365_CLIENT_ID":         sim.ClientID(),
		"O365_CLIENT_SECRET":     sim.ClientSecret(),
		"O365_API_URL":           sim.URL(),
		"O365_LOGIN_URL":         sim.URL(),
		"O365_TLS_CUSTOM":        "true",
		"O365_CA_FILE":           caFile,
		"O365_POLL_INTERVAL":     "2s",
		"O365_STATE_DIR":         filepath.Join(dir, "state"),
		"O365_LOG_LEVEL":         logLevel,
		"O365_HTTP_ADDRESS":      "127.0.0.1:0",
		"KAFKA_BROKERS":          strings.Join(brokers, ","),
		"KAFKA_TOPIC_PARTITIONS": "1",
	}, nil
}

// countTopicRecords consumes every topic of the broker until want records
// have been read, the timeout passes, or the pipeline stops.
func countTopicRecords(ctx context.Context, brokers []string, want int, timeout time.Duration, runErr <-chan error) (map[string]int, error) {
	client, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeRegex(), kgo.ConsumeTopics(`o365\..*`),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.MetadataMinAge(250*time.Millisecond), kgo.MetadataMaxAge(time.Second))
	if err != nil {
		return nil, fmt.Errorf("creating the demo consumer: %w", err)
	}
	defer client.Close()

	counts := map[string]int{}
	deadline := time.Now().Add(timeout)
	for total(counts) < want {
		select {
		case err := <-runErr:
			return counts, fmt.Errorf("the pipeline stopped early: %w", err)
		default:
		}
		if time.Now().After(deadline) {
			return counts, fmt.Errorf("only %d of %d records landed within %v", total(counts), want, timeout)
		}
		pollCtx, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		fetches := client.PollFetches(pollCtx)
		cancel()
		if err := fetches.Err0(); err != nil && !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled) {
			return counts, fmt.Errorf("consuming the demo topics: %w", err)
		}
		var unkeyed int
		fetches.EachRecord(func(r *kgo.Record) {
			counts[r.Topic]++
			if len(r.Key) == 0 || !bytes.Contains(r.Value, []byte(`"Id":"`+string(r.Key)+`"`)) {
				unkeyed++
			}
		})
		if unkeyed > 0 {
			return counts, fmt.Errorf("%d records are not keyed by their record Id", unkeyed)
		}
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

func printCounts(counts map[string]int) {
	names := make([]string, 0, len(counts))
	for name := range counts {
		names = append(names, name)
	}
	sort.Strings(names)
	fmt.Printf("\n%-32s %8s\n", "topic", "records")
	for _, name := range names {
		fmt.Printf("%-32s %8d\n", name, counts[name])
	}
	fmt.Printf("%-32s %8d\n", "total", total(counts))
}
