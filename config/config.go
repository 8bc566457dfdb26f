// Package config embeds the runnable pipeline configurations of this folder,
// so that the binary can run them (make run) without a checkout.
package config

import _ "embed"

// Kafka is the production pipeline (kafka.yaml), which `o365connect demo`
// (make run) also runs, against a simulated tenant and an in-process broker.
//
//go:embed kafka.yaml
var Kafka string
