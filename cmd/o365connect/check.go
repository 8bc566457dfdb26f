package main

import (
	"errors"
	"os"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/o365connect/o365connect/internal/operator"
)

// errNotPassed makes the command exit non-zero after its report is printed.
var errNotPassed = cli.Exit("", 1)

// checkCommand runs every step a pipeline needs and reports each one.
func checkCommand() *cli.Command {
	return &cli.Command{
		Name:      "check",
		Usage:     "Check that a pipeline config can work: token, permissions, subscriptions, audit log, content and Kafka",
		ArgsUsage: "[-c CONFIG]",
		Description: `Runs every step the pipeline needs, with the credentials in the config, and prints one
line per step: ok, warn, failed or skipped, and on failure the cause in plain words and the fix.
Nothing is written anywhere: Kafka topic creation is only validated. Exits 0 only when every step
passes (ok or warn).`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "pipeline config file (environment variables are interpolated as by run)", Required: true},
			&cli.BoolFlag{Name: "json", Usage: "print the report as JSON"},
		},
		Action: func(c *cli.Context) error {
			var results []operator.StepResult
			pipeline, err := operator.LoadPipeline(c.String("config"), nil)
			if err != nil {
				results = operator.ConfigFailure(err)
			} else {
				results = operator.Check(c.Context, pipeline, time.Now())
			}
			write := operator.WriteReport
			if c.Bool("json") {
				write = operator.WriteReportJSON
			}
			if err := write(os.Stdout, results); err != nil {
				return errors.Join(err, errNotPassed)
			}
			if !operator.Passed(results) {
				return errNotPassed
			}
			return nil
		},
	}
}
