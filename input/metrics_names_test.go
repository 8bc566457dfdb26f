package input

import (
	"os"
	"regexp"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// MetricNames feeds the alert rules' test, so it must list exactly what
// newInputMetrics registers.
func TestMetricNamesListsEveryRegisteredSeries(t *testing.T) {
	src, err := os.ReadFile("metrics.go")
	require.NoError(t, err)
	var registered []string
	for _, m := range regexp.MustCompile(`m\.New(?:Counter|Gauge|Timer)\("([^"]+)"`).FindAllStringSubmatch(string(src), -1) {
		registered = append(registered, m[1])
	}
	require.NotEmpty(t, registered)
	assert.ElementsMatch(t, registered, MetricNames)
}
