package resources_test

import (
	"bytes"
	"os"
	"regexp"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gopkg.in/yaml.v3"

	"github.com/o365connect/o365connect/input"
)

type alertRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Expr        string            `yaml:"expr"`
			For         string            `yaml:"for"`
			Labels      map[string]string `yaml:"labels"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// seriesName finds the o365_ series an expression reads; label names and
// functions never start with that prefix.
var seriesName = regexp.MustCompile(`\bo365_[a-zA-Z0-9_]+`)

func TestPrometheusAlertsUseOnlyRegisteredMetrics(t *testing.T) {
	raw, err := os.ReadFile("prometheus-alerts.yaml")
	require.NoError(t, err)
	var rules alertRules
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	require.NoError(t, dec.Decode(&rules))
	require.NotEmpty(t, rules.Groups)

	alerts := map[string]bool{}
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			require.NotEmpty(t, r.Alert, "every rule in group %s is an alert", g.Name)
			assert.False(t, alerts[r.Alert], "alert %s defined twice", r.Alert)
			alerts[r.Alert] = true
			assert.Contains(t, []string{"warning", "critical"}, r.Labels["severity"], "%s: severity", r.Alert)
			assert.NotEmpty(t, r.Annotations["summary"], "%s: summary", r.Alert)
			names := seriesName.FindAllString(r.Expr, -1)
			assert.NotEmpty(t, names, "%s reads no o365_ series", r.Alert)
			for _, name := range names {
				assert.True(t, slices.Contains(input.MetricNames, name), "%s reads %s, which the input does not register", r.Alert, name)
			}
		}
	}
	for _, want := range []string{"O365NoRecords", "O365CollectionLagging", "O365Throttled", "O365CheckpointWritesFailing"} {
		assert.True(t, alerts[want], "alert %s is defined", want)
	}
}
