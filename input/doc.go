// Package input registers the office365_activity Benthos input.
package input
