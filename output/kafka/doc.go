// Package kafka registers the kafka_franz output, written on franz-go.
package kafka
