// Command o365connect streams the Microsoft 365 unified audit log into Kafka.
package main

import (
	"context"

	_ "github.com/redpanda-data/benthos/v4/public/components/io"
	_ "github.com/redpanda-data/benthos/v4/public/components/pure"
	"github.com/redpanda-data/benthos/v4/public/service"

	_ "github.com/o365connect/o365connect/input"
	_ "github.com/o365connect/o365connect/output/kafka"
	_ "github.com/o365connect/o365connect/processor"
	_ "github.com/o365connect/o365connect/resources"
)

// Version and DateBuilt are set at build time with -ldflags.
var (
	Version   = "dev"
	DateBuilt = "unknown"
)

func main() {
	service.RunCLI(context.Background(),
		service.CLIOptSetBinaryName("o365connect"),
		service.CLIOptSetProductName("o365connect"),
		service.CLIOptSetVersion(Version, DateBuilt),
		service.CLIOptAddCommand(simulateCommand()),
		service.CLIOptAddCommand(demoCommand()),
		service.CLIOptAddCommand(checkCommand()),
		service.CLIOptAddCommand(subscriptionsCommand()),
		service.CLIOptAddCommand(benchCommand()),
	)
}
