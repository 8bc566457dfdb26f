// Package config embeds the runnable pipeline configurations of this folder,
// so that the binary can run them (make run) without a checkout.
package config

import _ "embed"

// Demo is the pipeline `o365connect demo` (make run) runs against the
// simulated tenant.
//
//go:embed demo.yaml
var Demo string
