package main

// The prometheus metrics exporter registers itself on import, like the
// components imported in main.go.
import _ "github.com/o365connect/o365connect/metrics"
