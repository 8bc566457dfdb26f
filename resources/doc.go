// Package resources registers o365connect's cache resources and embeds its Bloblang mappings.
package resources
