// Package processor registers o365connect's Benthos processors.
package processor
