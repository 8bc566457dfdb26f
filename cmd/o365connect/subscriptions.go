package main

import (
	"fmt"
	"os"

	"github.com/urfave/cli/v2"

	"github.com/o365connect/o365connect/internal/operator"
)

// subscriptionsCommand lists, starts and stops subscriptions with the
// credentials of a pipeline config.
func subscriptionsCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "config", Aliases: []string{"c"}, Usage: "pipeline config file holding the office365_activity input", Required: true},
		&cli.StringSliceFlag{Name: "content-type", Usage: "content type to act on (repeatable); default: the configured ones"},
		&cli.BoolFlag{Name: "json", Usage: "print JSON instead of a table"},
	}
	sub := func(action operator.SubscriptionAction, usage string) *cli.Command {
		return &cli.Command{
			Name:  string(action),
			Usage: usage,
			Flags: flags,
			Action: func(c *cli.Context) error {
				return runSubscriptions(c, action)
			},
		}
	}
	return &cli.Command{
		Name:  "subscriptions",
		Usage: "List, start or stop the Management Activity API subscriptions of a pipeline's tenant",
		Subcommands: []*cli.Command{
			sub(operator.ActionList, "Show whether each content type's subscription is enabled"),
			sub(operator.ActionStart, "Start the subscriptions (an enabled one is left as is and counts as success)"),
			sub(operator.ActionStop, "Stop the subscriptions (content of the stopped period stays unreachable)"),
		},
	}
}

func runSubscriptions(c *cli.Context, action operator.SubscriptionAction) error {
	pipeline, err := operator.LoadPipeline(c.String("config"), nil)
	if err != nil {
		return cli.Exit(err.Error(), 1)
	}
	var rows []operator.SubscriptionRow
	for _, in := range pipeline.Inputs {
		got, err := operator.ManageSubscriptions(c.Context, in.Settings, action, c.StringSlice("content-type"))
		if err != nil {
			return cli.Exit(fmt.Sprintf("%s at %s: %v", "office365_activity", in.Path, err), 1)
		}
		rows = append(rows, got...)
	}
	write := operator.WriteSubscriptionsTable
	if c.Bool("json") {
		write = operator.WriteSubscriptionsJSON
	}
	if err := write(os.Stdout, rows); err != nil {
		return err
	}
	if operator.SubscriptionsFailed(rows) {
		return cli.Exit("", 1)
	}
	return nil
}
