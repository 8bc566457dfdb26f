package main

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/o365connect/o365connect/input/o365api"
	"github.com/o365connect/o365connect/input/o365sim"
)

// simulateCommand serves the simulated tenant over TLS until interrupted, so
// that any pipeline (or curl) can be pointed at it.
func simulateCommand() *cli.Command {
	return &cli.Command{
		Name:  "simulate",
		Usage: "Serve a simulated Microsoft 365 tenant (Entra ID + Management Activity API) on 127.0.0.1",
		Description: `Serves the Entra ID token endpoints and the Office 365 Management Activity API for a
deterministic synthetic tenant over TLS. The CA that signed the server certificate is written to
--ca-file; point a pipeline's tls.root_cas_file at it and its api_url / login_url at the printed URL.`,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "addr", Value: "127.0.0.1:8443", Usage: "address to listen on (loopback only)"},
			&cli.StringFlag{Name: "ca-file", Value: "tmp/simulator-ca.pem", Usage: "where to write the CA certificate clients must trust"},
			&cli.StringFlag{Name: "cert-file", Usage: "when set, write a client certificate + key (PEM) registered with the simulated app here"},
			&cli.Int64Flag{Name: "seed", Value: 1, Usage: "seed of the synthetic tenant"},
			&cli.DurationFlag{Name: "history", Value: 24 * time.Hour, Usage: "how far back content exists (at most 168h)"},
			&cli.DurationFlag{Name: "blob-interval", Value: 15 * time.Minute, Usage: "spacing of blobs of one content type"},
			&cli.IntFlag{Name: "records-per-blob", Value: 20, Usage: "average records per blob"},
			&cli.BoolFlag{Name: "subscribed", Usage: "start with every subscription enabled"},
		},
		Action: func(c *cli.Context) error {
			cfg := o365sim.Config{
				Seed:           c.Int64("seed"),
				History:        c.Duration("history"),
				BlobInterval:   c.Duration("blob-interval"),
				RecordsPerBlob: c.Int("records-per-blob"),
			}
			if c.Bool("subscribed") {
				cfg.SubscribedAtStart = o365api.AllContentTypes
			}
			if path := c.String("cert-file"); path != "" {
				pemBytes, cert, err := o365sim.GenerateClientCertificate()
				if err != nil {
					return fmt.Errorf("generating the client certificate: %w", err)
				}
				if err := writePrivateFile(path, pemBytes); err != nil {
					return err
				}
				cfg.ClientCertificate = cert
			}
			sim, err := o365sim.New(cfg)
			if err != nil {
				return err
			}
			if err := sim.Start(c.String("addr")); err != nil {
				return err
			}
			defer sim.Close()
			if err := writePrivateFile(c.String("ca-file"), sim.CACertPEM()); err != nil {
				return err
			}
			fmt.Printf(`Simulated tenant serving on %s (Ctrl-C to stop)

  export O365_TENANT_ID=%s
  export O365_CLIENT_ID=%s
  export O365_CLIENT_SECRET=%s
  export O365_API_URL=%s
  export O365_LOGIN_URL=%s
  export O365_CA_FILE=%s
  export O365_TLS_CUSTOM=true
`, sim.URL(), sim.TenantID(), sim.ClientID(), sim.ClientSecret(), sim.URL(), sim.URL(), c.String("ca-file"))
			if path := c.String("cert-file"); path != "" {
				fmt.Printf("  # client certificate registered with the app: %s\n", path)
			}
			sigs := make(chan os.Signal, 1)
			signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
			<-sigs
			return nil
		},
	}
}

func writePrivateFile(path string, data []byte) error {
	if path == "" {
		return errors.New("empty output path")
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("creating the folder of %s: %w", path, err)
	}
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}
